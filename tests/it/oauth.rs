//! `/oauth/*` with a real OAuth client library, and every RFC 6749 error case.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_dbs;
use crate::harness::{Backend, Server, Site, python, root, segment};

both_dbs!(
    rfc6749_error_cases,
    client_credentials_tokens_and_introspection
);

/// Create a client through the admin API; returns (client_id, client_secret).
pub async fn make_client(
    s: &Server,
    admin: &str,
    grants: &[&str],
    scopes: &[&str],
    audience: Option<&str>,
) -> (String, String) {
    let body =
        json!({"name": "svc", "grant_types": grants, "scopes": scopes, "audience": audience});
    let r = s.post_json("/admin/clients", &body, Some(admin)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().await.unwrap();
    (
        v["client_id"].as_str().unwrap().into(),
        v["client_secret"].as_str().unwrap().into(),
    )
}

pub async fn form(
    s: &Server,
    path: &str,
    fields: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut r = s.http.post(s.url(path)).form(fields);
    if let Some((id, secret)) = basic {
        r = r.basic_auth(id, Some(secret));
    }
    r.send().await.unwrap()
}

async fn oauth_error(r: reqwest::Response, status: u16, error: &str) {
    assert_eq!(r.status().as_u16(), status);
    assert_eq!(r.headers()["cache-control"], "no-store");
    if status == 401 {
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
    }
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], error, "{v}");
    assert!(v["error_description"].is_string());
}

async fn admin_token(s: &Server) -> String {
    s.user("admin", "admin-password", &["admin"]).await;
    s.login("admin", "admin-password").await.access_token
}

async fn rfc6749_error_cases(b: Backend) {
    let site = Site::new(b).await;
    let s = Server::start(&site, &[]).await;
    let admin = admin_token(&s).await;
    s.user("alice", "alice-password", &[]).await;
    let (cc_id, cc_secret) =
        make_client(&s, &admin, &["client_credentials"], &["a", "b"], None).await;
    let cc = Some((cc_id.as_str(), cc_secret.as_str()));

    // invalid_request
    oauth_error(
        form(&s, "/oauth/token", &[], None).await,
        400,
        "invalid_request",
    )
    .await;
    let r = s
        .http
        .post(s.url("/oauth/token"))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    oauth_error(r, 400, "invalid_request").await;
    let r = s
        .http
        .post(s.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password&grant_type=password&username=alice&password=alice-password")
        .send()
        .await
        .unwrap();
    oauth_error(r, 400, "invalid_request").await;
    oauth_error(
        form(
            &s,
            "/oauth/token",
            &[("grant_type", "password"), ("password", "x")],
            None,
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    oauth_error(
        form(&s, "/oauth/token", &[("grant_type", "refresh_token")], None).await,
        400,
        "invalid_request",
    )
    .await;
    let both = [
        ("grant_type", "client_credentials"),
        ("client_secret", cc_secret.as_str()),
    ];
    oauth_error(
        form(&s, "/oauth/token", &both, cc).await,
        400,
        "invalid_request",
    )
    .await;
    // invalid_client
    oauth_error(
        form(
            &s,
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            None,
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
    oauth_error(
        form(
            &s,
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some((&cc_id, "wrong")),
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
    oauth_error(
        form(
            &s,
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some(("c_nobody", "x")),
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
    let id_only = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "alice-password"),
        ("client_id", cc_id.as_str()),
    ];
    oauth_error(
        form(&s, "/oauth/token", &id_only, None).await,
        401,
        "invalid_client",
    )
    .await;
    // unauthorized_client: this client may not use the password grant.
    let pw = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "alice-password"),
    ];
    oauth_error(
        form(&s, "/oauth/token", &pw, cc).await,
        400,
        "unauthorized_client",
    )
    .await;
    // unsupported_grant_type
    let device = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", "x"),
    ];
    oauth_error(
        form(&s, "/oauth/token", &device, None).await,
        400,
        "unsupported_grant_type",
    )
    .await;
    // The code grant needs a client (authenticated, or a public one by its id).
    let code = [("grant_type", "authorization_code"), ("code", "x")];
    oauth_error(
        form(&s, "/oauth/token", &code, None).await,
        401,
        "invalid_client",
    )
    .await;
    // invalid_scope
    let scoped = [("grant_type", "client_credentials"), ("scope", "a c")];
    oauth_error(
        form(&s, "/oauth/token", &scoped, cc).await,
        400,
        "invalid_scope",
    )
    .await;
    let admin_scope = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "alice-password"),
        ("scope", "admin"),
    ];
    oauth_error(
        form(&s, "/oauth/token", &admin_scope, None).await,
        400,
        "invalid_scope",
    )
    .await;
    // invalid_grant
    let bad = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "wrong-password"),
    ];
    oauth_error(
        form(&s, "/oauth/token", &bad, None).await,
        400,
        "invalid_grant",
    )
    .await;
    let unknown = [
        ("grant_type", "password"),
        ("username", "nobody"),
        ("password", "wrong-password"),
    ];
    oauth_error(
        form(&s, "/oauth/token", &unknown, None).await,
        400,
        "invalid_grant",
    )
    .await;
    oauth_error(
        form(
            &s,
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "garbage"),
            ],
            None,
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;

    // The password and refresh grants for a public caller, then reuse → invalid_grant.
    let r = form(&s, "/oauth/token", &pw, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let t: Value = r.json().await.unwrap();
    assert_eq!(
        (t["token_type"].as_str(), t["scope"].as_str()),
        (Some("Bearer"), Some("profile"))
    );
    let rt = t["refresh_token"].as_str().unwrap();
    let r = form(
        &s,
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = form(
        &s,
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        None,
    )
    .await;
    oauth_error(r, 400, "invalid_grant").await;
    // A refresh token of a public session presented by a client: not that client's.
    let t2: Value = form(&s, "/oauth/token", &pw, None)
        .await
        .json()
        .await
        .unwrap();
    let r = form(
        &s,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t2["refresh_token"].as_str().unwrap()),
        ],
        cc,
    )
    .await;
    oauth_error(r, 400, "unauthorized_client").await;
    s.stop().await;
}

async fn client_credentials_tokens_and_introspection(b: Backend) {
    let site = Site::new(b).await;
    let s = Server::start(&site, &[]).await;
    let admin = admin_token(&s).await;
    let (id, secret) = make_client(
        &s,
        &admin,
        &["client_credentials"],
        &["billing:read", "billing:write"],
        Some("https://billing.example"),
    )
    .await;
    let basic = Some((id.as_str(), secret.as_str()));

    let r = form(
        &s,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("scope", "billing:read"),
        ],
        basic,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert!(
        t.get("refresh_token").is_none(),
        "no refresh token for client_credentials"
    );
    assert_eq!(t["scope"], "billing:read");
    let at = t["access_token"].as_str().unwrap();
    let c = segment(at, 1);
    assert_eq!(
        (
            c["sub"].as_str(),
            c["client_id"].as_str(),
            c["aud"].as_str()
        ),
        (
            Some(id.as_str()),
            Some(id.as_str()),
            Some("https://billing.example")
        )
    );
    assert!(c.get("sid").is_none());
    // Form-field client authentication works too; default scope = all the client's scopes.
    let r = form(
        &s,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
        None,
    )
    .await;
    let t2: Value = r.json().await.unwrap();
    assert_eq!(t2["scope"], "billing:read billing:write");

    // Introspection: as the client, and as an admin bearer; unauthenticated is refused.
    let r = form(&s, "/oauth/introspect", &[("token", at)], basic).await;
    assert_eq!(r.status(), StatusCode::OK);
    let i: Value = r.json().await.unwrap();
    assert_eq!(i["active"], true);
    assert_eq!(
        (
            i["client_id"].as_str(),
            i["token_type"].as_str(),
            i["scope"].as_str()
        ),
        (
            Some(id.as_str()),
            Some("access_token"),
            Some("billing:read")
        )
    );
    let r = s
        .http
        .post(s.url("/oauth/introspect"))
        .bearer_auth(&admin)
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);
    let r = form(&s, "/oauth/introspect", &[("token", at)], None).await;
    oauth_error(r, 401, "invalid_client").await;
    let r = form(&s, "/oauth/introspect", &[("token", "garbage")], basic).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"active": false}));

    // Deleting the client kills its tokens.
    let r = s
        .http
        .delete(s.url(&format!("/admin/clients/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s
        .http
        .post(s.url("/oauth/introspect"))
        .bearer_auth(&admin)
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["active"], false);
    let r = form(
        &s,
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        basic,
    )
    .await;
    oauth_error(r, 401, "invalid_client").await;
    // ...also after a restart, which reloads the denylist from the database.
    s.stop().await;
    let s = Server::start(&site, &[]).await;
    let r = s
        .http
        .post(s.url("/oauth/introspect"))
        .bearer_auth(&admin)
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["active"],
        false,
        "a deleted client's token came back after a restart"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_oauthlib_drives_all_three_grants() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    let admin = admin_token(&s).await;
    s.user("olivia", "olivia-password", &[]).await;
    let (id, secret) = make_client(
        &s,
        &admin,
        &["password", "refresh_token", "client_credentials"],
        &["billing:read"],
        None,
    )
    .await;
    let url = s.url("/oauth/token");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .arg(root().join("tests/py/oauth_client.py"))
            .args([&url, &id, &secret, "olivia", "olivia-password"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "requests-oauthlib failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["client_credentials"]["scope"], json!(["billing:read"]));
    assert!(v["client_credentials"].get("refresh_token").is_none());
    let pw = &v["password"];
    assert!(pw["refresh_token"].is_string());
    let refreshed = &v["refreshed"];
    assert_ne!(refreshed["refresh_token"], pw["refresh_token"]);
    // The library's tokens are real: keymint's own API accepts them.
    for t in [&pw["access_token"], &refreshed["access_token"]] {
        assert_eq!(
            s.get("/auth/me", Some(t.as_str().unwrap())).await.status(),
            StatusCode::OK
        );
    }
    s.stop().await;
}
