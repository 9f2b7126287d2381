//! Operations: Prometheus metrics, request ids, graceful shutdown.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Backend, Proc, Server, Site};

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happens() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    s.user("mia", "mia-password", &[]).await;
    let t = s.login("mia", "mia-password").await;
    s.post_json(
        "/auth/login",
        &json!({"username": "mia", "password": "nope-nope"}),
        None,
    )
    .await;
    s.get("/auth/me", Some(&t.access_token)).await;
    s.get("/auth/me", Some("garbage")).await;
    s.post_json(
        "/auth/refresh",
        &json!({"refresh_token": t.refresh_token}),
        None,
    )
    .await;
    s.http
        .post(s.url("/auth/logout"))
        .bearer_auth(&t.access_token)
        .send()
        .await
        .unwrap();
    s.get("/auth/me", Some(&t.access_token)).await;

    let r = s.get("/metrics", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    assert_eq!(
        metric(&text, "keymint_tokens_issued_total{kind=\"access\"}"),
        2.0
    );
    assert_eq!(
        metric(&text, "keymint_tokens_issued_total{kind=\"refresh\"}"),
        2.0
    );
    assert_eq!(metric(&text, "keymint_logins_total{outcome=\"ok\"}"), 1.0);
    assert_eq!(
        metric(&text, "keymint_logins_total{outcome=\"failed\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "keymint_token_verification_failures_total{reason=\"malformed\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "keymint_token_verification_failures_total{reason=\"revoked\"}"
        ),
        1.0
    );
    assert!(
        metric(&text, "keymint_revocations") >= 2.0,
        "the logout's jti and sid"
    );
    assert!(text.contains("keymint_key_age_seconds{kid="));
    assert!(
        metric(
            &text,
            "keymint_http_request_duration_seconds_count{route=\"/auth/me\",method=\"GET\",status=\"200\"}"
        ) >= 1.0
    );
    // Labels carry route templates, never raw paths or tokens.
    assert!(!text.contains(&t.access_token[..20]));

    // Request ids: echoed when sane, generated otherwise.
    let r = s
        .http
        .get(s.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = s
        .http
        .get(s.url("/healthz"))
        .header("x-request-id", "bad id\twith junk")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    s.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let site = Site::new(Backend::Sqlite).await;
    let mut p = Proc::spawn(&site, &[("KEYMINT_BOOTSTRAP_ADMIN", "root:root-password")]).await;
    // An in-flight login: headers and half the body sent.
    let addr = p.base.trim_start_matches("http://").to_string();
    let body = br#"{"username":"root","password":"root-password"}"#;
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = p.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are refused while the in-flight request is still served.
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "still accepting after SIGTERM"
    );
    c.write_all(&body[10..]).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let resp = String::from_utf8_lossy(&buf[..n]);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    drop(c);
    let status = tokio::task::spawn_blocking(move || p.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");
}
