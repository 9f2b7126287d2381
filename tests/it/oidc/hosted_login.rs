//! The hosted login page: what it is made of (no script, labelled fields, a strict CSP),
//! and that it is the same door as `/auth/login`: the same throttling counted before hashing,
//! the same generic error, a form CSRF check that costs no hashing, and `return_to` kept on
//! keymint.

use serde_json::{Value, json};

use super::{Browser, hidden, location};
use crate::harness::{Backend, Server, Site};

/// Logins that reached argon2 and failed, per the server's own counter.
async fn hashed_failures(s: &Server) -> f64 {
    let text = s.get("/metrics", None).await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("keymint_logins_total{outcome=\"failed\"} "))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_plain_accessible_html_under_a_strict_policy() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    let br = Browser::new(&s);
    let r = br
        .get("/login?return_to=%2Fsomewhere&login_hint=%22%3E%3Cscript%3E")
        .await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(h["x-frame-options"], "DENY");
    let html = r.text().await.unwrap();
    assert!(
        !html.to_lowercase().contains("<script"),
        "no script, not even an injected one"
    );
    assert!(html.contains("<label for=\"username\">") && html.contains("id=\"username\""));
    assert!(html.contains("<label for=\"password\">") && html.contains("id=\"password\""));
    assert!(html.contains("autocomplete=\"current-password\""));
    assert_eq!(hidden(&html, "return_to"), "/somewhere");
    for attr in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!html.contains(attr), "no third-party asset ({attr})");
    }
    let css = br.get("/assets/keymint.css").await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let nonce = br.set_cookie_line("km_login");
    assert!(
        nonce.contains("HttpOnly") && nonce.contains("SameSite=Strict"),
        "{nonce}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_throttles_like_the_api_and_hashes_only_the_allowance() {
    let site = Site::new(Backend::Sqlite).await;
    let now = keymint::clock::system_now();
    let s = Server::start_with_clock(&site, &[], keymint::clock::Clock::frozen_at(now)).await;
    s.user("alice", "alice-password", &[]).await;
    let br = Browser::new(&s);
    let html = br.get("/login").await.text().await.unwrap();
    let csrf = hidden(&html, "csrf");
    let post = |user: &'static str, pw: &'static str, return_to: &'static str| {
        let (br, csrf) = (&br, csrf.clone());
        async move {
            br.post_form(
                "/login",
                &[
                    ("username", user),
                    ("password", pw),
                    ("csrf", &csrf),
                    ("return_to", return_to),
                ],
            )
            .await
        }
    };

    // Without the form's nonce cookie: refused before anything is counted or hashed.
    let stranger = Browser::new(&s);
    let r = stranger
        .post_form(
            "/login",
            &[("username", "alice"), ("password", "x"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(hashed_failures(&s).await, 0.0);
    // Usernames over 64 bytes: 400 before throttling or hashing.
    let long: &'static str = Box::leak("a".repeat(65).into_boxed_str());
    assert_eq!(post(long, "pw", "/").await.status(), 400);
    assert_eq!(hashed_failures(&s).await, 0.0);

    // The generic error is the same for an unknown user and a wrong password.
    let unknown = post("nobody", "wrong-password", "/").await;
    assert_eq!(unknown.status(), 401);
    let wrong = post("alice", "wrong-password", "/").await;
    assert_eq!(wrong.status(), 401);
    let error_of = |html: String| {
        let start = html.find("role=\"alert\"").unwrap();
        html[start..start + 60].to_string()
    };
    assert_eq!(
        error_of(unknown.text().await.unwrap()),
        error_of(wrong.text().await.unwrap())
    );

    // 30 concurrent wrong passwords for alice: at most the free allowance (5) is hashed.
    let attempts = (0..30).map(|_| post("alice", "wrong-password", "/"));
    let answers = futures_join(attempts).await;
    let hashed = hashed_failures(&s).await;
    let limited = answers.iter().filter(|(st, _)| *st == 429).count();
    eprintln!(
        "30 concurrent wrong passwords at /login: {hashed} hashed (2 before), {limited} refused"
    );
    assert!(
        hashed <= 6.0,
        "{hashed} hashed: 1 unknown user + at most 5 for alice"
    );
    assert!(
        answers
            .iter()
            .filter(|(st, _)| *st == 429)
            .all(|(_, retry)| retry.is_some())
    );
    // The same counters answer /auth/login: one limiter for both doors.
    let api = s
        .post_json(
            "/auth/login",
            &json!({"username": "alice", "password": "alice-password"}),
            None,
        )
        .await;
    assert_eq!(api.status(), 429);
    let api_body: Value = api.json().await.unwrap();
    assert_eq!(api_body["error"], "RATE_LIMITED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_goes_only_to_a_path_on_keymint() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    s.user("dave", "dave-password", &[]).await;
    for (asked, lands) in [
        ("/oauth/authorize?x=1", "/oauth/authorize?x=1"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
    ] {
        let br = Browser::new(&s);
        let html = br.get("/login").await.text().await.unwrap();
        let csrf = hidden(&html, "csrf");
        let r = br
            .post_form(
                "/login",
                &[
                    ("username", "dave"),
                    ("password", "dave-password"),
                    ("csrf", &csrf),
                    ("return_to", asked),
                ],
            )
            .await;
        assert_eq!(r.status(), 303);
        assert_eq!(location(&r), lands, "return_to {asked:?}");
        let home = br.get("/").await.text().await.unwrap();
        assert!(home.contains("Signed in as <strong>dave</strong>"));
    }
}

/// Run futures concurrently; (status, Retry-After) of each.
async fn futures_join<F>(futs: impl Iterator<Item = F>) -> Vec<(u16, Option<String>)>
where
    F: std::future::Future<Output = reqwest::Response>,
{
    let mut set = Vec::new();
    for f in futs {
        set.push(f);
    }
    let all = futures_util_join_all(set).await;
    all.into_iter()
        .map(|r| {
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), retry)
        })
        .collect()
}

async fn futures_util_join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    // Poll every future on this task, so the requests are in flight together.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}
