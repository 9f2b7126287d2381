//! Every administrative rule holds through both doors, the admin API and the CLI, because both
//! call the same use case: a new password or disabling ends sessions, deleting a client
//! revokes its tokens, the last admin stays, and each leaves the same audit record.

use std::io::Write;
use std::process::Stdio;

use keymint::db::entities::audit_events;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::harness::{Backend, Server, Site};
use crate::oauth::{form, make_client};

/// Run `keymint ARGS` on the site's database, with `stdin` as standard input.
fn cli(site: &Site, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keymint"))
        .args(args)
        .envs(site.env(&[]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The kinds and actors of the admin audit records (`user.*`) about `subject`, oldest first.
async fn audited(s: &Server, subject: &str) -> Vec<(String, String)> {
    audit_events::Entity::find()
        .filter(audit_events::Column::Subject.eq(subject))
        .filter(audit_events::Column::Kind.starts_with("user."))
        .all(&s.app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.actor.unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rule_holds_through_the_api_and_the_cli() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    let root = s.user("root", "root-password", &["admin"]).await;
    let admin = s.login("root", "root-password").await.access_token;
    let api = s.user("api-user", "api-password", &[]).await;
    let cli_user = s.user("cli-user", "cli-password", &[]).await;

    // A new password ends every session, whichever door set it.
    let t_api = s.login("api-user", "api-password").await.access_token;
    let t_cli = s.login("cli-user", "cli-password").await.access_token;
    let r = s
        .http
        .patch(s.url(&format!("/admin/users/{}", api.id)))
        .bearer_auth(&admin)
        .json(&json!({"password": "new-api-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let out = cli(
        &site,
        &["users", "set-password", "cli-user", "--password-stdin"],
        "new-cli-password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.app.sync_now().await.unwrap();
    for t in [&t_api, &t_cli] {
        assert_eq!(s.get("/auth/me", Some(t)).await.status(), 401);
    }
    s.login("api-user", "new-api-password").await;
    s.login("cli-user", "new-cli-password").await;

    // Disabling ends sessions too.
    let t_api = s.login("api-user", "new-api-password").await.access_token;
    let t_cli = s.login("cli-user", "new-cli-password").await.access_token;
    let r = s
        .http
        .patch(s.url(&format!("/admin/users/{}", api.id)))
        .bearer_auth(&admin)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let out = cli(&site, &["users", "disable", "cli-user"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.app.sync_now().await.unwrap();
    for t in [&t_api, &t_cli] {
        assert_eq!(s.get("/auth/me", Some(t)).await.status(), 401);
    }

    // The same audit records, told apart only by the actor.
    let by_api = audited(&s, &api.id).await;
    let by_cli = audited(&s, &cli_user.id).await;
    let kinds = |v: &[(String, String)]| v.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
    assert_eq!(kinds(&by_api), kinds(&by_cli));
    assert!(by_api.iter().all(|e| e.1 == root.id), "{by_api:?}");
    assert!(by_cli.iter().all(|e| e.1 == "cli"), "{by_cli:?}");

    // Deleting a client revokes every token it holds, through either door.
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (id, secret) = make_client(&s, &admin, &["client_credentials"], &["read"], None).await;
        let r = form(
            &s,
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some((&id, &secret)),
        )
        .await;
        let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        tokens.push(token);
        ids.push(id);
    }
    let r = s
        .http
        .delete(s.url(&format!("/admin/clients/{}", ids[0])))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let out = cli(&site, &["clients", "delete", &ids[1]], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.app.sync_now().await.unwrap();
    for t in &tokens {
        let r = s
            .http
            .post(s.url("/oauth/introspect"))
            .bearer_auth(&admin)
            .form(&[("token", t.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["active"],
            false
        );
    }
    s.stop().await;
}
