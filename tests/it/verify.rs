//! `keymint-verify` against a live keymint (SPEC section 8): rotations under continuous
//! verification, a storm of random kids, keymint stopped, a JWKS answering garbage, and the
//! `protected_api` example refusing a logout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use keymint_verify::{Verifier, VerifyError};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, Server, Site, admin_post, forge, kid, segment, tamper};
use crate::oauth::make_client;

/// A server that is its own issuer, an admin token and a client's credentials.
async fn issuer(extra: &[(&str, &str)]) -> (Site, Server, String, (String, String)) {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start_as_issuer(&site, extra).await;
    s.user("admin", "admin-password", &["admin"]).await;
    let admin = s.login("admin", "admin-password").await.access_token;
    let client = make_client(&s, &admin, &["client_credentials"], &["api"], None).await;
    (site, s, admin, client)
}

async fn client_token(s: &Server, (id, secret): &(String, String)) -> String {
    let v: Value = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

async fn rotate(s: &Server, admin: &str) {
    admin_post(s, admin, "/admin/keys/rotate?purpose=access").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_rotations_under_continuous_verification_refuse_nothing() {
    let (_site, s, admin, client) = issuer(&[("KEYMINT_JWKS_MAX_AGE", "1s")]).await;
    let v = Verifier::builder(&s.base)
        .jwks_max_age_bounds(Duration::from_secs(1), Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    let s = Arc::new(s);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let verifying = {
        let (s, v, done) = (s.clone(), v.clone(), done.clone());
        tokio::spawn(async move {
            let (mut tokens, mut failures, mut kids) = (Vec::new(), Vec::new(), Vec::new());
            while !done.load(Ordering::Relaxed) {
                let t = client_token(&s, &client).await;
                if !kids.contains(&kid(&t)) {
                    kids.push(kid(&t));
                }
                tokens.push(t);
                // Every token minted so far, old keys included, must keep verifying.
                for t in tokens.iter().rev().take(20) {
                    if let Err(e) = v.verify(t).await {
                        failures.push((kid(t), e));
                    }
                }
            }
            (tokens.len(), failures, kids)
        })
    };
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        rotate(&s, &admin).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, Ordering::Relaxed);
    let (minted, failures, kids) = verifying.await.unwrap();
    let stats = v.stats();
    eprintln!("{minted} tokens from {} kids; {stats:?}", kids.len());
    assert!(failures.is_empty(), "refused: {failures:?}");
    assert_eq!(kids.len(), 6, "tokens of 6 keys were verified: {kids:?}");
    assert!(stats.verified >= 6 * 5, "{stats:?}");
    // Pre-publication and the background refresh did the work, not refetches on the request path.
    assert_eq!(stats.unknown_kid_refetches, 0, "{stats:?}");
}

/// A JWKS endpoint in front of keymint's that counts its requests.
async fn counting_proxy(upstream: String) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (h, upstream) = (h.clone(), upstream.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let r = reqwest::get(&upstream).await.unwrap();
                let cc = r.headers()["cache-control"].to_str().unwrap().to_owned();
                ([("cache-control", cc)], r.bytes().await.unwrap().to_vec())
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, hits)
}

/// `token` with a random kid: same claims and signature, a key nobody publishes.
fn with_random_kid(token: &str, i: usize) -> String {
    let mut header = segment(token, 0);
    header["kid"] = json!(format!("random-{i}-{}", uuid_like()));
    let (_, rest) = token.split_once('.').unwrap();
    format!("{}.{rest}", B64.encode(header.to_string()))
}

fn uuid_like() -> String {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Verify `tokens` all at once; how many were refused as `UnknownKey`.
async fn storm(v: &Verifier, tokens: Vec<String>) -> usize {
    let mut set = tokio::task::JoinSet::new();
    for t in tokens {
        let v = v.clone();
        set.spawn(async move { v.verify(&t).await });
    }
    let mut unknown = 0;
    while let Some(r) = set.join_next().await {
        if r.unwrap() == Err(VerifyError::UnknownKey) {
            unknown += 1;
        }
    }
    unknown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kids_cost_at_most_one_jwks_fetch_per_cooldown() {
    let (_site, s, admin, client) = issuer(&[]).await;
    let (url, hits) = counting_proxy(s.url("/.well-known/jwks.json")).await;
    let v = Verifier::builder(&s.base)
        .jwks_url(&url)
        .missing_kids_capacity(256)
        .build()
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let good = client_token(&s, &client).await;

    let tokens: Vec<String> = (0..2000).map(|i| with_random_kid(&good, i)).collect();
    assert_eq!(storm(&v, tokens).await, 2000);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "2,000 random kids: one refetch"
    );
    let tokens: Vec<String> = (0..2000).map(|i| with_random_kid(&good, i)).collect();
    assert_eq!(storm(&v, tokens).await, 2000);
    assert_eq!(hits.load(Ordering::SeqCst), 2, "within the cooldown: none");
    let stats = v.stats();
    assert_eq!(stats.unknown_kid_refetches, 1);
    assert!(stats.missing_kids <= 256, "bounded: {stats:?}");

    // The real keys were never crowded out: the signing key verifies, and so does the next
    // one once it signs (it was published before it did).
    assert!(v.verify(&good).await.is_ok());
    rotate(&s, &admin).await;
    let after = client_token(&s, &client).await;
    assert_ne!(kid(&after), kid(&good));
    assert_eq!(v.verify(&after).await.map(|c| c.sub), Ok(client.0.clone()));
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // With a 1 s cooldown: a storm per second costs a fetch per second, no more.
    let (url, hits) = counting_proxy(s.url("/.well-known/jwks.json")).await;
    let v = Verifier::builder(&s.base)
        .jwks_url(&url)
        .refetch_cooldown(Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    let started = Instant::now();
    for round in 0..3 {
        let tokens: Vec<String> = (0..2000).map(|i| with_random_kid(&good, i)).collect();
        assert_eq!(storm(&v, tokens).await, 2000, "round {round}");
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let cooldowns = started.elapsed().as_secs_f64().ceil() as usize;
    let refetches = hits.load(Ordering::SeqCst) - 1;
    eprintln!("3 storms of 2,000 over {cooldowns} s: {refetches} refetches");
    assert!(
        (1..=cooldowns).contains(&refetches),
        "{refetches} > {cooldowns}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keymint_stopped_tokens_verify_until_the_bound_then_fail_as_configured() {
    let (_site, s, _admin, client) = issuer(&[]).await;
    let build = |fail_open: bool| {
        Verifier::builder(&s.base)
            .jwks_max_age_bounds(Duration::from_secs(1), Duration::from_secs(1))
            .max_stale(Duration::from_secs(2))
            .follow_revocations(&client.0, &client.1)
            .revocation_poll(Duration::from_millis(100))
            .revocation_max_stale(Duration::from_millis(1500))
            .fail_open(fail_open)
            .build()
    };
    let (closed, open) = (build(false).await.unwrap(), build(true).await.unwrap());
    let token = client_token(&s, &client).await;
    assert!(closed.verify(&token).await.is_ok());
    assert!(open.verify(&token).await.is_ok());

    s.stop().await;
    let stopped = Instant::now();
    let (mut closed_at, mut open_at) = (None, None);
    while (closed_at.is_none() || open_at.is_none()) && stopped.elapsed() < Duration::from_secs(8) {
        if closed_at.is_none()
            && let Err(e) = closed.verify(&token).await
        {
            closed_at = Some((stopped.elapsed(), e));
        }
        if open_at.is_none()
            && let Err(e) = open.verify(&token).await
        {
            open_at = Some((stopped.elapsed(), e));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (closed_at, closed_err) = closed_at.expect("fail-closed verifier never refused");
    let (open_at, open_err) = open_at.expect("fail-open verifier never refused");
    eprintln!(
        "fail closed after {closed_at:?} ({closed_err}); open until {open_at:?} ({open_err})"
    );
    // Feed bound 1.5 s, last read at most 0.1 s before the stop.
    assert_eq!(closed_err, VerifyError::RevocationsUnavailable);
    assert!(
        closed_at >= Duration::from_millis(1300) && closed_at <= Duration::from_millis(3500),
        "{closed_at:?}"
    );
    // Keys: max-age 1 s + staleness 2 s after the last confirmation (≤ 0.8 s before the stop).
    assert_eq!(open_err, VerifyError::KeysUnavailable);
    assert!(
        open_at >= Duration::from_millis(2100) && open_at <= Duration::from_millis(5500),
        "{open_at:?}"
    );
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Good,
    Error500,
    Garbage,
    NoKeys,
    Html,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_answering_errors_or_garbage_never_drops_the_last_good_set() {
    let (_site, s, _admin, client) = issuer(&[]).await;
    let real = reqwest::get(s.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let mode = Arc::new(std::sync::Mutex::new(Mode::Good));
    let m = mode.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let (m, real) = (m.clone(), real.clone());
            async move {
                let cc = [("cache-control", "max-age=1"), ("etag", "\"v1\"")];
                let mode = *m.lock().unwrap();
                match mode {
                    Mode::Good if headers.get("if-none-match").is_some_and(|v| v == "\"v1\"") => {
                        (StatusCode::NOT_MODIFIED, cc, Vec::new())
                    }
                    Mode::Good => (StatusCode::OK, cc, real),
                    Mode::Error500 => (StatusCode::INTERNAL_SERVER_ERROR, cc, b"oops".to_vec()),
                    Mode::Garbage => (StatusCode::OK, cc, b"{\"keys\": [tru".to_vec()),
                    Mode::NoKeys => (StatusCode::OK, cc, b"{\"keys\": []}".to_vec()),
                    Mode::Html => (StatusCode::OK, cc, b"<html>maintenance</html>".to_vec()),
                }
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });

    let v = Verifier::builder(&s.base)
        .jwks_url(&url)
        .jwks_max_age_bounds(Duration::from_secs(1), Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    let token = client_token(&s, &client).await;
    let keys = v.stats().keys;
    for bad in [Mode::Error500, Mode::Garbage, Mode::NoKeys, Mode::Html] {
        *mode.lock().unwrap() = bad;
        let failures = v.stats().jwks_fetch_failures;
        let deadline = Instant::now() + Duration::from_secs(15);
        while v.stats().jwks_fetch_failures < failures + 2 {
            assert!(Instant::now() < deadline, "no refresh in {bad:?}");
            assert!(v.verify(&token).await.is_ok(), "{bad:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(v.verify(&token).await.is_ok(), "{bad:?}");
        assert_eq!(v.stats().keys, keys, "{bad:?}");
    }
    // Back to good: revalidated with the ETag, answered 304.
    *mode.lock().unwrap() = Mode::Good;
    let deadline = Instant::now() + Duration::from_secs(15);
    while v.stats().jwks_not_modified == 0 {
        assert!(Instant::now() < deadline, "no revalidation");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(v.verify(&token).await.is_ok());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifier_refuses_what_keymint_would_refuse() {
    let (_site, s, _admin, client) = issuer(&[]).await;
    s.user("u", "u-password", &[]).await;
    let pair = s.login("u", "u-password").await;
    let v = Verifier::builder(&s.base).build().await.unwrap();
    let claims = v.verify(&pair.access_token).await.unwrap();
    assert_eq!(
        claims.sid.as_deref(),
        segment(&pair.access_token, 1)["sid"].as_str()
    );
    let now = s.app.now();
    let t = &pair.access_token;
    let tampered = tamper(t);
    // Algorithm confusion: HS256 keyed with the published RSA public key.
    let hs256 = {
        let jwks: Value = reqwest::get(s.url("/.well-known/jwks.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let n = jwks["keys"][0]["n"].as_str().unwrap().to_owned();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid(t));
        let key = jsonwebtoken::EncodingKey::from_secret(n.as_bytes());
        jsonwebtoken::encode(&header, &segment(t, 1), &key).unwrap()
    };
    let cases = [
        (pair.refresh_token.clone(), VerifyError::WrongType),
        (tampered, VerifyError::BadSignature),
        (hs256, VerifyError::BadSignature),
        (forge(t, 0, "typ", json!("JWT")), VerifyError::WrongType),
        (
            forge(t, 1, "type", json!("refresh")),
            VerifyError::WrongType,
        ),
        (
            forge(t, 1, "iss", json!("http://evil")),
            VerifyError::WrongIssuer,
        ),
        (
            forge(t, 1, "aud", json!("http://other")),
            VerifyError::WrongAudience,
        ),
        (forge(t, 1, "exp", json!(now - 60)), VerifyError::Expired),
        (
            forge(t, 1, "nbf", json!(now + 3600)),
            VerifyError::NotYetValid,
        ),
        (forge(t, 0, "kid", json!("nope")), VerifyError::UnknownKey),
        ("not-a-token".into(), VerifyError::Malformed),
        ("a".repeat(9000), VerifyError::Malformed),
    ];
    for (token, want) in cases {
        assert_eq!(v.verify(&token).await.err(), Some(want.clone()), "{want:?}");
    }
    // Headers that name other keys are ignored: the JWKS URL configured is the only source.
    let jku = forge(t, 0, "jku", json!("http://127.0.0.1:9/evil.json"));
    assert!(v.verify(&jku).await.is_ok());
    // alg "none" with the signature dropped.
    let none = forge(t, 0, "alg", json!("none"));
    let none = format!("{}.", none.rsplit_once('.').unwrap().0);
    assert!(v.verify(&none).await.is_err());

    // Scopes and audience as configured.
    let scoped = Verifier::builder(&s.base)
        .required_scopes(["api"])
        .build()
        .await
        .unwrap();
    assert_eq!(
        scoped.verify(&pair.access_token).await.err(),
        Some(VerifyError::InsufficientScope("api".into()))
    );
    assert!(
        scoped
            .verify(&client_token(&s, &client).await)
            .await
            .is_ok()
    );
    let other = Verifier::builder(&s.base)
        .audience("https://other.example")
        .build()
        .await
        .unwrap();
    assert_eq!(
        other.verify(&pair.access_token).await.err(),
        Some(VerifyError::WrongAudience)
    );
    let stats = v.stats();
    assert_eq!(stats.verified, 2);
    assert_eq!(stats.rejected_for("wrong_type"), 3);
    assert!(
        stats
            .prometheus()
            .contains("keymint_verify_tokens_total{outcome=\"ok\"} 2\n")
    );
    s.stop().await;
}

/// GET `url` with an optional bearer: (status, `WWW-Authenticate`, body).
async fn get_as(url: &str, token: Option<String>) -> (StatusCode, Option<String>, String) {
    let mut r = reqwest::Client::new().get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status(), challenge, r.text().await.unwrap())
}

/// A child process killed however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The example binary `cargo test --workspace` builds beside this test binary.
fn example_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/protected_api");
    assert!(
        path.exists(),
        "{} is missing: run the suite with `cargo test --workspace` (README), which builds it",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_refuses_a_logout_within_two_seconds() {
    let (_site, s, _admin, client) = issuer(&[]).await;
    let child = std::process::Command::new(example_binary())
        .env("BIND", "127.0.0.1:0")
        .env("KEYMINT_ISSUER", &s.base)
        .env("KEYMINT_CLIENT_ID", &client.0)
        .env("KEYMINT_CLIENT_SECRET", &client.1)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut example = KillOnDrop(child);
    let stdout = example.0.stdout.take().unwrap();
    let line = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .map(|_| line)
        }),
    )
    .await
    .expect("the example printed no address within 20 s")
    .unwrap()
    .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the example printed {line:?}, not its address"))
        .to_owned();
    let hello = format!("http://{addr}/hello");
    let call = |token: Option<String>| {
        let hello = hello.clone();
        async move {
            let (status, challenge, body) = get_as(&hello, token).await;
            (
                status,
                challenge,
                serde_json::from_str::<Value>(&body).unwrap(),
            )
        }
    };

    let (status, challenge, _) = call(None).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("Bearer"))
    );
    let (status, challenge, _) = call(Some("garbage".into())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")
    );

    let u = s.user("walker", "walker-password", &[]).await;
    let mut delays = Vec::new();
    for i in 0..8u64 {
        let t = s.login("walker", "walker-password").await;
        let (status, _, body) = call(Some(t.access_token.clone())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({"sub": u.id, "scope": "profile"}));
        let (status, _, _) = call(Some(t.refresh_token.clone())).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "a refresh token is no access token"
        );

        // Log out at a different phase of the example's 1 s poll each time.
        tokio::time::sleep(Duration::from_millis(i * 131 % 1000)).await;
        let r = s
            .post_json("/auth/logout", &json!({}), Some(&t.access_token))
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let logged_out = Instant::now();
        loop {
            let (status, challenge, _) = call(Some(t.access_token.clone())).await;
            if status == StatusCode::UNAUTHORIZED {
                assert!(challenge.unwrap().contains("error=\"invalid_token\""));
                break;
            }
            assert!(
                logged_out.elapsed() < Duration::from_secs(2),
                "still accepted after 2 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        delays.push(logged_out.elapsed());
    }
    delays.sort();
    let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
    eprintln!("logout refused by the example after (ms, sorted): {ms:?}");
    drop(example);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_puts_claims_into_requests_and_answers_refusals() {
    use axum::Extension;
    use keymint_verify::{Claims, VerifyLayer};
    let (_site, s, _admin, client) = issuer(&[]).await;
    let v = Verifier::builder(&s.base)
        .required_scopes(["api"])
        .build()
        .await
        .unwrap();
    let app = axum::Router::new()
        .route(
            "/whoami",
            axum::routing::get(|Extension(c): Extension<Claims>| async move { c.sub }),
        )
        .layer(VerifyLayer::new(v));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/whoami", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    let call = |token: Option<String>| {
        let url = url.clone();
        async move { get_as(&url, token).await }
    };
    let (status, _, body) = call(Some(client_token(&s, &client).await)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, client.0.as_str()));
    let (status, challenge, _) = call(None).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("Bearer"))
    );
    s.user("u", "u-password", &[]).await;
    let user = s.login("u", "u-password").await.access_token;
    let (status, challenge, _) = call(Some(user)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no `api` scope");
    assert_eq!(
        challenge.unwrap(),
        "Bearer error=\"insufficient_scope\", scope=\"api\""
    );
    let (status, challenge, body) = call(Some("x.y.z".into())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().contains("invalid_token"));
    assert!(body.contains("invalid_token"), "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_revocation_reaches_the_verifier_and_failing_open_keeps_them() {
    let (_site, s, admin, client) = issuer(&[]).await;
    let verifier = |fail_open: bool| {
        Verifier::builder(&s.base)
            .follow_revocations(&client.0, &client.1)
            .revocation_poll(Duration::from_millis(100))
            .revocation_max_stale(Duration::from_millis(500))
            .fail_open(fail_open)
            .build()
    };
    let v = verifier(true).await.unwrap();
    let refused = |v: Verifier, token: String| async move {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match v.verify(&token).await {
                Err(e) => return e,
                Ok(_) => assert!(Instant::now() < deadline, "still accepted after 3 s"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    // A session ended by an admin (`sid` rows only: the jti was never revoked).
    let u = s.user("u", "u-password", &[]).await;
    let t = s.login("u", "u-password").await.access_token;
    assert!(v.verify(&t).await.is_ok());
    admin_post(
        &s,
        &admin,
        &format!("/admin/users/{}/revoke-sessions", u.id),
    )
    .await;
    assert_eq!(refused(v.clone(), t.clone()).await, VerifyError::Revoked);
    // A deleted client (`client` rows): its tokens die with it.
    let (gone_id, gone_secret) =
        make_client(&s, &admin, &["client_credentials"], &["api"], None).await;
    let ct = client_token(&s, &(gone_id.clone(), gone_secret)).await;
    assert!(v.verify(&ct).await.is_ok());
    let r = s
        .http
        .delete(s.url(&format!("/admin/clients/{gone_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(refused(v.clone(), ct.clone()).await, VerifyError::Revoked);

    // keymint away past the feed's bound: failing open accepts what it cannot check, never
    // what it knows to be revoked.
    let live = client_token(&s, &client).await;
    s.stop().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(v.stats().revocations_age.unwrap() > Duration::from_millis(500));
    assert!(v.verify(&live).await.is_ok());
    assert_eq!(v.verify(&t).await.err(), Some(VerifyError::Revoked));
    assert_eq!(v.verify(&ct).await.err(), Some(VerifyError::Revoked));
}
