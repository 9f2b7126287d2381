//! Abuse resistance: login throttling, connection and request limits, security headers, CORS.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Backend, Server, Site, assert_error};
use crate::oauth::form;

async fn login(s: &Server, user: &str, pw: &str) -> reqwest::Response {
    s.post_json(
        "/auth/login",
        &json!({"username": user, "password": pw}),
        None,
    )
    .await
}

/// Login attempts with `outcome` in the audit log (repeated failures are counted records).
async fn audit_count(s: &Server, outcome: &str) -> u64 {
    crate::abuse::login_audit(&s.app, outcome).await.0 as u64
}

/// Fail until throttled: five free failures, then at most a couple more that a loaded machine
/// may let through after the first 1 s back-off. Returns the 429.
async fn fail_until_throttled(s: &Server, user: &str) -> reqwest::Response {
    for _ in 0..5 {
        assert_error(
            login(s, user, "wrong-password").await,
            401,
            "INVALID_CREDENTIALS",
        )
        .await;
    }
    for _ in 0..3 {
        let r = login(s, user, "wrong-password").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            return r;
        }
        assert_error(r, 401, "INVALID_CREDENTIALS").await;
    }
    panic!("{user}: still not throttled after 8 failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_back_off_per_username_on_both_login_paths() {
    let site = Site::new(Backend::Sqlite).await;
    // Time stands still unless the test moves it: a slow, loaded machine cannot let a back-off
    // run out between two attempts.
    let clock = keymint::clock::Clock::frozen_at(keymint::clock::system_now());
    let s = Server::start_with_clock(&site, &[], clock).await;
    s.user("alice", "alice-password", &[]).await;
    let r = fail_until_throttled(&s, "alice").await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry));
    assert_error(r, 429, "RATE_LIMITED").await;
    // Throttled before any hashing, even with the right password.
    assert_error(
        login(&s, "alice", "alice-password").await,
        429,
        "RATE_LIMITED",
    )
    .await;
    // The password grant shares the limiter and answers in RFC 6749 form.
    let fields = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "alice-password"),
    ];
    let r = form(&s, "/oauth/token", &fields, None).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "rate_limited");
    // Unknown usernames are throttled the same way (no account oracle).
    let r = fail_until_throttled(&s, "nobody").await;
    assert_error(r, 429, "RATE_LIMITED").await;
    // Other users are unaffected, and the back-off ends.
    s.user("bob", "bob-password", &[]).await;
    s.login("bob", "bob-password").await;
    let mut waited = 0;
    loop {
        let r = login(&s, "alice", "alice-password").await;
        if r.status() == StatusCode::OK {
            break;
        }
        let wait: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            wait <= 16,
            "the back-off after a handful of failures is seconds, not {wait}"
        );
        waited += wait;
        assert!(waited <= 60);
        // Time passes on the server's clock; the test does not wait for it.
        s.app.clock.advance(wait as i64);
    }
    assert!(
        audit_count(&s, "failed").await >= 10,
        "every failure is audited"
    );
    assert!(audit_count(&s, "throttled").await >= 4);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_limited_per_address() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(
        &site,
        &[
            ("KEYMINT_LOGIN_IP_FAILURES", "3"),
            ("KEYMINT_LOGIN_IP_WINDOW", "2s"),
        ],
    )
    .await;
    s.user("carol", "carol-password", &[]).await;
    for u in ["u1", "u2", "u3"] {
        assert_error(
            login(&s, u, "wrong-password").await,
            401,
            "INVALID_CREDENTIALS",
        )
        .await;
    }
    let r = login(&s, "carol", "carol-password").await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, 429, "RATE_LIMITED").await;
    s.app.clock.advance(3);
    s.login("carol", "carol-password").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_slow_requests_are_cut_off() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(
        &site,
        &[
            ("KEYMINT_REQUEST_TIMEOUT", "1s"),
            ("KEYMINT_HEADER_TIMEOUT", "1s"),
        ],
    )
    .await;
    // A 100 KiB header: refused by the HTTP layer (431), never a 5xx.
    let r = s
        .http
        .get(s.url("/healthz"))
        .header("x-big", "a".repeat(100 * 1024))
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
    // A slow body: promised 100 bytes, sent 10. The deadline answers 408.
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"usernam").await.unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Slowloris: headers never finish. The connection is closed after the header timeout.
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(20), c.read(&mut buf))
        .await
        .expect("the server must close a connection whose headers never finish");
    let n = res.unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "closed after {waited:?}, the header timeout is 1 s"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_everywhere_and_hsts_for_https() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    for (path, expect) in [
        ("/healthz", 200),
        ("/.well-known/jwks.json", 200),
        ("/auth/me", 401),
        ("/nope", 404),
        ("/docs/", 200),
    ] {
        let r = s.get(path, None).await;
        assert_eq!(r.status().as_u16(), expect, "{path}");
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(
            !h.contains_key("strict-transport-security"),
            "no HSTS for an http issuer"
        );
    }
    s.stop().await;
    let s = Server::start(&site, &[("KEYMINT_ISSUER", "https://id.example")]).await;
    let r = s.get("/healthz", None).await;
    assert!(
        r.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_closed_by_default_and_opens_only_to_listed_origins() {
    let preflight = |s: &Server, origin: &str| {
        s.http
            .request(reqwest::Method::OPTIONS, s.url("/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    let r = preflight(&s, "https://app.example").await.unwrap();
    assert!(
        !r.headers().contains_key("access-control-allow-origin"),
        "closed by default"
    );
    let r = s
        .http
        .get(s.url("/healthz"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    s.stop().await;

    let s = Server::start(&site, &[("KEYMINT_CORS_ORIGINS", "https://app.example")]).await;
    let r = preflight(&s, "https://app.example").await.unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let r = preflight(&s, "https://evil.example").await.unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    s.stop().await;
}
