//! Every administrative rule holds through both doors, the admin API and the CLI, because both
//! call the same use case: a new password or disabling ends sessions, deleting a client
//! revokes its tokens, the last admin stays, and each leaves the same audit record.

use keymint::db::entities::audit_events;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::harness::{Backend, Server, Site, run_cli};
use crate::oauth::{form, make_client};

/// `PATCH /admin/users/{id}` with `body` as the admin; asserts 200.
async fn patch_user(s: &Server, admin: &str, id: &str, body: serde_json::Value) {
    let r = s
        .http
        .patch(s.url(&format!("/admin/users/{id}")))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// `keymint ARGS` on the site's database; asserts success.
async fn cli(site: &Site, args: &[&str], stdin: &str) {
    let out = run_cli(site, args, stdin).await;
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    patch_user(&s, &admin, &api.id, json!({"password": "new-api-password"})).await;
    cli(
        &site,
        &["users", "set-password", "cli-user", "--password-stdin"],
        "new-cli-password\n",
    )
    .await;
    s.app.sync_now().await.unwrap();
    for t in [&t_api, &t_cli] {
        assert_eq!(s.get("/auth/me", Some(t)).await.status(), 401);
    }
    s.login("api-user", "new-api-password").await;
    s.login("cli-user", "new-cli-password").await;

    // Disabling ends sessions too.
    let t_api = s.login("api-user", "new-api-password").await.access_token;
    let t_cli = s.login("cli-user", "new-cli-password").await.access_token;
    patch_user(&s, &admin, &api.id, json!({"disabled": true})).await;
    cli(&site, &["users", "disable", "cli-user"], "").await;
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
    cli(&site, &["clients", "delete", &ids[1]], "").await;
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
