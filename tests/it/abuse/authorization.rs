//! Authorization (SPEC section 4, "Who may do what with a token"): client tokens carry no
//! admin power, introspection and revocation are scoped to the client that owns a token, the
//! last admin survives races through both doors, and metrics keep refresh kids private.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_dbs;
use crate::harness::{Backend, Proc, Server, Site, assert_error, run_cli};
use crate::oauth::{form, make_client};

both_dbs!(last_admin_survives_concurrent_disables);

async fn admin(s: &Server) -> String {
    s.user("root", "root-password", &["admin"]).await;
    s.login("root", "root-password").await.access_token
}

/// Whether `/oauth/introspect`, called as `auth`, says `token` is active.
async fn active(s: &Server, token: &str, auth: Option<(&str, &str)>) -> bool {
    let r = form(s, "/oauth/introspect", &[("token", token)], auth).await;
    json_of(r).await["active"].as_bool().unwrap()
}

async fn json_of(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_never_carries_admin_power() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    let root = admin(&s).await;
    let (id, secret) = make_client(&s, &root, &["password"], &["profile"], None).await;
    // The admin signs in to a third-party app: the app gets a token for the same user.
    let r = form(
        &s,
        "/oauth/token",
        &[
            ("grant_type", "password"),
            ("username", "root"),
            ("password", "root-password"),
        ],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(r.status(), 200);
    let app_token = json_of(r).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .post_json(
            "/admin/users",
            &json!({"username": "mallory", "password": "mallory-password", "roles": ["admin"]}),
            Some(&app_token),
        )
        .await;
    assert_error(r, 403, "FORBIDDEN").await;
    assert_error(
        s.get("/admin/users", Some(&app_token)).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert!(
        s.app.users.by_username("mallory").await.unwrap().is_none(),
        "no user was created"
    );
    // The same user's first-party token still works.
    assert_eq!(s.get("/admin/users", Some(&root)).await.status(), 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_and_revocation_are_scoped_to_the_owning_client() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    let root = admin(&s).await;
    s.user("alice", "alice-password", &[]).await;
    let grants = ["password", "refresh_token", "client_credentials"];
    let (a, a_secret) = make_client(&s, &root, &grants, &["read"], None).await;
    let (b, b_secret) = make_client(&s, &root, &grants, &["read"], Some("https://b.example")).await;
    let (c, c_secret) = make_client(
        &s,
        &root,
        &["client_credentials"],
        &["read"],
        Some("https://b.example"),
    )
    .await;
    let (a_auth, b_auth) = (
        Some((a.as_str(), a_secret.as_str())),
        Some((b.as_str(), b_secret.as_str())),
    );
    let pair = json_of(
        form(
            &s,
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice-password"),
            ],
            a_auth,
        )
        .await,
    )
    .await;
    let (access, refresh) = (
        pair["access_token"].as_str().unwrap().to_string(),
        pair["refresh_token"].as_str().unwrap().to_string(),
    );
    // Its own client sees it; another client learns nothing.
    assert!(active(&s, &access, a_auth).await);
    assert!(active(&s, &refresh, a_auth).await);
    assert!(!active(&s, &access, b_auth).await);
    assert!(!active(&s, &refresh, b_auth).await);
    // A token addressed to B's audience is visible to B, whoever it was issued to.
    let for_b = json_of(
        form(
            &s,
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some((&c, &c_secret)),
        )
        .await,
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(active(&s, &for_b, b_auth).await);
    assert!(!active(&s, &for_b, a_auth).await);
    // An admin bearer sees everything.
    let r = s
        .http
        .post(s.url("/oauth/introspect"))
        .bearer_auth(&root)
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["active"], true);

    // Revocation of A's refresh token: without A's authentication, 401 and it stays valid.
    let r = form(&s, "/oauth/revoke", &[("token", refresh.as_str())], None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(r).await["error"], "invalid_client");
    let r = form(&s, "/oauth/revoke", &[("token", refresh.as_str())], b_auth).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(r).await["error"], "unauthorized_client");
    assert!(active(&s, &refresh, a_auth).await, "still valid");
    assert!(active(&s, &access, a_auth).await, "still valid");
    let r = form(&s, "/oauth/revoke", &[("token", refresh.as_str())], a_auth).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!active(&s, &refresh, a_auth).await, "revoked by its owner");
    s.stop().await;
}

async fn last_admin_survives_concurrent_disables(b: Backend) {
    let site = Site::new(b).await;
    let s = Server::start(&site, &[]).await;
    admin(&s).await;
    let other = s.user("root2", "root2-password", &["admin"]).await;
    let me = s.app.users.by_username("root").await.unwrap().unwrap().user;
    for round in 0..5 {
        let t1 = s.login("root", "root-password").await.access_token;
        let t2 = s.login("root2", "root2-password").await.access_token;
        // Each admin disables the other at the same moment.
        let disable = |id: &str, token: &str| {
            s.http
                .patch(s.url(&format!("/admin/users/{id}")))
                .bearer_auth(token)
                .json(&json!({"disabled": true}))
                .send()
        };
        let (one, two) = tokio::join!(disable(&other.id, &t1), disable(&me.id, &t2));
        let codes = [
            one.unwrap().status().as_u16(),
            two.unwrap().status().as_u16(),
        ];
        let admins = s
            .app
            .users
            .list()
            .await
            .unwrap()
            .into_iter()
            .filter(|u| u.is_admin() && !u.disabled)
            .count();
        assert_eq!(
            admins, 1,
            "round {round}: {codes:?} left {admins} enabled admins"
        );
        // One wins; the other is refused (409), or already locked out (401/403).
        assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
        assert!(
            codes.iter().all(|c| [200, 401, 403, 409].contains(c)),
            "{codes:?}"
        );
        for u in [&me.id, &other.id] {
            s.app
                .users
                .set_disabled(u, false, keymint::clock::system_now())
                .await
                .unwrap();
        }
    }
    // Through the CLI door: the last enabled admin can be neither disabled nor demoted.
    s.app
        .users
        .set_disabled(&other.id, true, keymint::clock::system_now())
        .await
        .unwrap();
    for args in [
        vec!["users", "disable", "root"],
        vec!["users", "set-roles", "root", "--role", "viewer"],
    ] {
        let out = run_cli(&site, &args, "").await;
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no enabled admin"), "{args:?}: {err}");
    }
    let me = s.app.users.by_username("root").await.unwrap().unwrap().user;
    assert!(me.is_admin() && !me.disabled);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_bind_moves_metrics_and_refresh_kids_are_never_shown() {
    let site = Site::new(Backend::Sqlite).await;
    let p = Proc::spawn(&site, &[("KEYMINT_METRICS_BIND", "127.0.0.1:0")]).await;
    let metrics_url = p
        .metrics_url
        .clone()
        .expect("the metrics address is printed");
    let http = reqwest::Client::new();
    let main = http.get(p.url("/metrics")).send().await.unwrap();
    assert_eq!(
        main.status(),
        404,
        "the main listener does not serve /metrics"
    );
    let text = http
        .get(&metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("keymint_key_age_seconds"), "{text}");
    // Only /metrics lives there.
    let r = http
        .get(metrics_url.replace("/metrics", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let db = crate::harness::site_db(&site).await;
    use sea_orm::EntityTrait;
    let keys = keymint::db::entities::signing_keys::Entity::find()
        .all(&db)
        .await
        .unwrap();
    let (access, refresh): (Vec<_>, Vec<_>) = keys.iter().partition(|k| k.purpose == "access");
    assert!(!refresh.is_empty());
    for k in refresh {
        assert!(!text.contains(&k.kid), "refresh kid {} is exposed", k.kid);
    }
    for k in access {
        assert!(text.contains(&k.kid), "access kid {} is missing", k.kid);
    }
}
