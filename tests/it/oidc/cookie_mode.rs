//! Cookie mode (SPEC section 7): tokens only in httpOnly cookies with the exact names and
//! attributes, the access cookie accepted wherever a bearer is, and the CSRF rule on every
//! cookie-authenticated state-changing request.

use serde_json::{Value, json};

use super::Browser;
use crate::harness::{Backend, Server, Site};

async fn login(br: &Browser, user: &str, pw: &str) -> Value {
    let r = br
        .post(
            "/auth/login?mode=cookie",
            Some(json!({"username": user, "password": pw})),
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_mode_keeps_tokens_out_of_the_body_and_enforces_csrf() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[("KEYMINT_CORS_ORIGINS", "https://app.example")]).await;
    s.user("admin", "admin-password", &["admin"]).await;
    let br = Browser::new(&s);
    let body = login(&br, "admin", "admin-password").await;
    // No token in the body: the lifetimes and the CSRF token only.
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "csrf_token",
            "expires_in",
            "refresh_expires_in",
            "token_type"
        ]
    );
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    assert_eq!(br.cookie("km_csrf").as_deref(), Some(csrf.as_str()));
    let access = br.set_cookie_line("km_access");
    assert!(
        access.contains("; Path=/;")
            && access.contains("Max-Age=900")
            && access.contains("SameSite=Strict")
            && access.contains("HttpOnly"),
        "{access}"
    );
    let refresh = br.set_cookie_line("km_refresh");
    assert!(
        refresh.contains("Path=/auth;")
            && refresh.contains("Max-Age=2592000")
            && refresh.contains("SameSite=Strict")
            && refresh.contains("HttpOnly"),
        "{refresh}"
    );
    let c = br.set_cookie_line("km_csrf");
    assert!(
        c.contains("Path=/;") && c.contains("SameSite=Strict") && !c.contains("HttpOnly"),
        "{c}"
    );
    assert!(!access.contains("Secure"), "plain http issuer: not Secure");

    // The access cookie works wherever a bearer does: /auth/me, /admin (first-party).
    let me: Value = br.get("/auth/me").await.json().await.unwrap();
    assert_eq!(me["username"], "admin");
    assert_eq!(br.get("/admin/keys").await.status(), 200);

    // State-changing requests under a cookie need the session's CSRF token and an allowed
    // Origin; each refusal leaves the session as it was.
    let rotate = "/admin/keys/rotate?purpose=access";
    let kids_before: Value = br.get("/admin/keys").await.json().await.unwrap();
    for (headers, why) in [
        (vec![], "no token"),
        (vec![("x-csrf-token", "planted-value")], "a planted value"),
        (
            vec![
                ("x-csrf-token", csrf.as_str()),
                ("origin", "https://evil.example"),
            ],
            "a foreign origin",
        ),
    ] {
        let r = br.post(rotate, None, &headers).await;
        assert_eq!(r.status(), 403, "{why}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "CSRF_FAILED",
            "{why}"
        );
    }
    let kids_after: Value = br.get("/admin/keys").await.json().await.unwrap();
    assert_eq!(kids_before, kids_after, "no rotation happened");
    // Another session's CSRF token is not this one's (bound to the sid by HMAC).
    let other = Browser::new(&s);
    let other_csrf = login(&other, "admin", "admin-password").await["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(other_csrf, csrf);
    let r = br
        .post(rotate, None, &[("x-csrf-token", &other_csrf)])
        .await;
    assert_eq!(r.status(), 403);
    for origin in [
        None,
        Some("http://keymint.test"),
        Some("https://app.example"),
    ] {
        let mut h = vec![("x-csrf-token", csrf.as_str())];
        if let Some(o) = origin {
            h.push(("origin", o));
        }
        let r = br.post(rotate, None, &h).await;
        assert_eq!(r.status(), 200, "origin {origin:?}");
    }
    // A bearer request needs no CSRF token.
    let bearer = s.login("admin", "admin-password").await.access_token;
    let r = s
        .http
        .post(s.url(rotate))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Refresh: from the cookie, CSRF-checked, new cookies, the same CSRF token (same session).
    let old_access = br.cookie("km_access").unwrap();
    let r = br.post("/auth/refresh?mode=cookie", None, &[]).await;
    assert_eq!(r.status(), 403);
    let r = br
        .post(
            "/auth/refresh?mode=cookie",
            None,
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 200);
    let again: Value = r.json().await.unwrap();
    assert!(again.get("access_token").is_none() && again.get("refresh_token").is_none());
    assert_eq!(again["csrf_token"], csrf.as_str());
    assert_ne!(br.cookie("km_access").unwrap(), old_access);

    // Logout: CSRF-checked, clears the three cookies, and the old cookies stop working.
    let access_before = br.cookie("km_access").unwrap();
    let r = br.post("/auth/logout?mode=cookie", None, &[]).await;
    assert_eq!(r.status(), 403, "logout is state-changing too");
    let r = br
        .post("/auth/logout?mode=cookie", None, &[("x-csrf-token", &csrf)])
        .await;
    assert_eq!(r.status(), 204);
    for name in ["km_access", "km_refresh", "km_csrf"] {
        assert!(
            br.set_cookie_line(name).contains("Max-Age=0"),
            "{name} cleared"
        );
        assert!(br.cookie(name).is_none());
    }
    br.set_cookie("km_access", &access_before);
    let r = br.get("/auth/me").await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "TOKEN_REVOKED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_issuer_prefixes_and_secures_every_cookie() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[("KEYMINT_ISSUER", "https://id.example")]).await;
    s.user("carol", "carol-password", &[]).await;
    let br = Browser::new(&s);
    let body = login(&br, "carol", "carol-password").await;
    for name in ["__Host-km_access", "__Secure-km_refresh", "__Host-km_csrf"] {
        let line = br.set_cookie_line(name);
        assert!(line.contains("; Secure"), "{line}");
    }
    assert!(
        br.set_cookie_line("__Host-km_access").contains("Path=/;"),
        "__Host- needs Path=/"
    );
    let me = br.get("/auth/me").await;
    assert_eq!(me.status(), 200);
    let csrf = body["csrf_token"].as_str().unwrap();
    let r = br
        .post(
            "/auth/logout?mode=cookie",
            None,
            &[("x-csrf-token", csrf), ("origin", "https://id.example")],
        )
        .await;
    assert_eq!(r.status(), 204);
    // The hosted login's session cookie too.
    let page = br.get("/login").await;
    assert!(br.set_cookie_line("__Host-km_login").contains("; Secure"));
    assert_eq!(page.status(), 200);
}
