//! Password guessing: attempts are counted before hashing, so bursts cannot outrun the limits;
//! counters are shared by instances on one database; the client address is the right one
//! behind a trusted proxy and IPv6 is limited per /64.

use reqwest::StatusCode;
use serde_json::json;

use super::{login_audit, metric};
use crate::both_dbs;
use crate::harness::{Backend, Server, Site};

both_dbs!(
    a_burst_against_one_user_hashes_only_the_allowance,
    a_burst_across_usernames_hashes_only_the_address_allowance,
    instances_on_one_database_share_the_counters
);

/// Fire `n` concurrent logins at `base`; returns the status codes in completion order.
async fn burst(
    http: &reqwest::Client,
    base: &str,
    attempts: Vec<(String, String, Option<String>)>,
) -> Vec<u16> {
    let mut set = tokio::task::JoinSet::new();
    for (i, (user, pw, xff)) in attempts.into_iter().enumerate() {
        let (http, url) = (http.clone(), format!("{base}/auth/login"));
        set.spawn(async move {
            let mut r = http
                .post(url)
                .json(&json!({"username": user, "password": pw}));
            if let Some(x) = xff {
                r = r.header("x-forwarded-for", x);
            }
            (i, r.send().await.unwrap().status().as_u16())
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out.sort();
    out.into_iter().map(|(_, s)| s).collect()
}

/// Logins that reached argon2 and failed, per the server's own counter.
async fn hashed_failures(s: &Server) -> f64 {
    let text = s.get("/metrics", None).await.text().await.unwrap();
    metric(&text, "keymint_logins_total{outcome=\"failed\"}")
}

/// A server whose clock stands still: the policy lets the 6th guess through a second after
/// the 5th, so on a loaded machine a burst slower than that would measure the machine, not the
/// concurrency bound these tests are about.
async fn frozen(site: &Site) -> Server {
    let now = keymint::clock::system_now();
    Server::start_with_clock(site, &[], keymint::clock::Clock::frozen_at(now)).await
}

async fn a_burst_against_one_user_hashes_only_the_allowance(b: Backend) {
    let site = Site::new(b).await;
    let s = frozen(&site).await;
    s.user("alice", "alice-password", &[]).await;
    // 40 concurrent wrong guesses (the reviewer's reproduction: all 40 were hashed).
    let attempts: Vec<_> = (0..40)
        .map(|i| ("alice".to_string(), format!("wrong-{i}"), None))
        .collect();
    let codes = burst(&s.http, &s.base, attempts).await;
    let answered_401 = codes.iter().filter(|c| **c == 401).count();
    let answered_429 = codes.iter().filter(|c| **c == 429).count();
    let hashed = hashed_failures(&s).await;
    eprintln!("40 concurrent guesses for one user: {hashed} hashed, {answered_429} refused");
    assert!(hashed <= 5.0, "{hashed} wrong passwords were hashed");
    assert_eq!(answered_401 as f64, hashed, "{codes:?}");
    assert_eq!(answered_401 + answered_429, 40, "{codes:?}");
    // Every attempt is in the audit log, as counts on a few records.
    let (failed, _) = login_audit(&s.app, "failed").await;
    let (throttled, records) = login_audit(&s.app, "throttled").await;
    assert_eq!(failed as f64, hashed);
    assert_eq!(throttled as usize, answered_429);
    assert!(
        records <= 2,
        "{records} throttled records for one (address, user)"
    );
    s.stop().await;
}

async fn a_burst_across_usernames_hashes_only_the_address_allowance(b: Backend) {
    let site = Site::new(b).await;
    let s = frozen(&site).await;
    let attempts = (0..40)
        .map(|i| (format!("user{i}"), "wrong-password".to_string(), None))
        .collect();
    let codes = burst(&s.http, &s.base, attempts).await;
    let hashed = hashed_failures(&s).await;
    let refused = codes.iter().filter(|c| **c == 429).count();
    eprintln!("40 concurrent usernames from one address: {hashed} hashed, {refused} refused");
    assert!(hashed <= 20.0, "{hashed} attempts hashed for one address");
    assert_eq!(refused as f64 + hashed, 40.0, "{codes:?}");
    s.stop().await;
}

async fn instances_on_one_database_share_the_counters(b: Backend) {
    let site = Site::new(b).await;
    let one = Server::start(&site, &[]).await;
    let two = Server::start(&site, &[]).await;
    one.user("bob", "bob-password", &[]).await;
    // Alternate the instances: together they allow the free failures once, not twice.
    let mut codes = Vec::new();
    for i in 0..12 {
        let s = if i % 2 == 0 { &one } else { &two };
        let r = s
            .post_json(
                "/auth/login",
                &json!({"username": "bob", "password": "wrong-password"}),
                None,
            )
            .await;
        codes.push(r.status().as_u16());
    }
    let hashed = hashed_failures(&one).await + hashed_failures(&two).await;
    assert!(
        hashed <= 6.0,
        "two instances hashed {hashed} guesses: {codes:?}"
    );
    assert_eq!(codes.iter().filter(|c| **c == 401).count() as f64, hashed);
    assert_eq!(codes[11], 429, "{codes:?}");
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_counts_only_behind_a_trusted_proxy_and_ipv6_per_64() {
    let site = Site::new(Backend::Sqlite).await;
    let limits = [("KEYMINT_LOGIN_IP_FAILURES", "3")];
    // Without trusted proxies, X-Forwarded-For is ignored: rotating it does not help.
    let direct = Server::start(&site, &limits).await;
    let attempts = (0..6)
        .map(|i| {
            (
                format!("spoof{i}"),
                "wrong-password".into(),
                Some(format!("198.51.100.{i}")),
            )
        })
        .collect();
    let codes = burst(&direct.http, &direct.base, attempts).await;
    assert_eq!(codes.iter().filter(|c| **c == 401).count(), 3, "{codes:?}");
    direct.stop().await;

    // Behind a trusted proxy (the test client at 127.0.0.1), each forwarded client has its
    // own allowance, so one attacker cannot lock everyone out.
    let site = Site::new(Backend::Sqlite).await;
    let proxied = Server::start(
        &site,
        &[
            ("KEYMINT_LOGIN_IP_FAILURES", "3"),
            ("KEYMINT_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"),
        ],
    )
    .await;
    let send = |user: &str, xff: &str| {
        let r = proxied
            .http
            .post(proxied.url("/auth/login"))
            .header("x-forwarded-for", xff)
            .json(&json!({"username": user, "password": "wrong-password"}));
        async move { r.send().await.unwrap().status() }
    };
    for i in 0..3 {
        // A forged left-most entry does not matter: the right-most untrusted one counts.
        let s = send(
            &format!("a{i}"),
            &format!("6.6.6.{i}, 203.0.113.1, 10.1.2.3"),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        send("a9", "203.0.113.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(send("b0", "203.0.113.2").await, StatusCode::UNAUTHORIZED);
    // IPv6: one /64 is one client, however many addresses it uses.
    for i in 1..=3 {
        assert_eq!(
            send(&format!("v6{i}"), &format!("2001:db8:1:2::{i}")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        send("v6x", "2001:db8:1:2:ffff::99").await,
        StatusCode::TOO_MANY_REQUESTS,
        "another address in the same /64"
    );
    assert_eq!(
        send("v6y", "2001:db8:1:3::1").await,
        StatusCode::UNAUTHORIZED,
        "another /64"
    );
    proxied.stop().await;
}
