//! Floods: throttled attempts cost no hashing and almost no storage, oversized usernames are
//! refused before anything is stored, the audit log is retained for a bounded time, and
//! memory stays bounded under concurrent logins.

use std::time::Duration;

use keymint::db::entities::{audit_events, login_limits};
use sea_orm::{ActiveValue::Set, EntityTrait, PaginatorTrait};
use serde_json::json;

use super::{login_audit, metric};
use crate::harness::{Backend, Proc, Server, Site, assert_error};
use crate::oauth::form;

/// Bytes of the SQLite database file, after the server wrote the repeated events it holds and
/// the WAL was folded back in; and the size the WAL file had reached before that.
async fn db_bytes(s: &Server, site: &Site) -> (u64, u64) {
    use sea_orm::ConnectionTrait;
    s.app.repeats.flush(&s.app.db).await;
    let wal = std::fs::metadata(site.dir.path().join("keymint.db-wal")).map_or(0, |m| m.len());
    s.app
        .db
        .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .unwrap();
    let db = std::fs::metadata(site.dir.path().join("keymint.db"))
        .unwrap()
        .len();
    (db, wal)
}

/// The status of one login as `name` with a wrong password.
async fn wrong_login(http: reqwest::Client, url: String, name: String) -> u16 {
    let body = json!({"username": name, "password": "wrong-password"});
    let r = http.post(url).json(&body).send().await.unwrap();
    r.status().as_u16()
}

/// `n` logins at `s`, 16 at a time, each with the username `user(i)`. Every one is refused
/// (429) except those the back-off lets through (401); returns how many those were.
async fn flood(s: &Server, n: usize, user: impl Fn(usize) -> String) -> usize {
    let mut set = tokio::task::JoinSet::new();
    let mut let_through = 0;
    let mut tally = |code: u16| {
        assert!(code == 429 || code == 401, "{code}");
        let_through += usize::from(code == 401);
    };
    for i in 0..n {
        if set.len() >= 16 {
            tally(set.join_next().await.unwrap().unwrap());
        }
        set.spawn(wrong_login(s.http.clone(), s.url("/auth/login"), user(i)));
    }
    while let Some(r) = set.join_next().await {
        tally(r.unwrap());
    }
    let_through
}

async fn fail(s: &Server, user: &str) {
    let body = json!({"username": user, "password": "wrong-password"});
    assert_eq!(s.post_json("/auth/login", &body, None).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_floods_cost_no_hashing_and_almost_no_storage() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    // Throttle one username and flood it; then throttle the address (20 failures) and flood
    // it with 64-byte random usernames. 2,000 throttled attempts in all.
    for _ in 0..5 {
        fail(&s, "victim").await;
    }
    let (before, _) = db_bytes(&s, &site).await;
    let started = std::time::Instant::now();
    let backoff_passed = flood(&s, 1000, |_| "victim".into()).await;
    // The back-off doubles after each attempt it lets through: 1 s, 2 s, 4 s...
    let secs = started.elapsed().as_secs_f64();
    assert!(
        (backoff_passed as f64) <= (secs + 1.0).log2().ceil() + 1.0,
        "{backoff_passed} attempts hashed in {secs:.1} s of flooding"
    );
    let (after, wal_1) = db_bytes(&s, &site).await;
    let mut growth = after.saturating_sub(before);
    // The address has counted 5 + backoff_passed failures; fill it up to 20.
    for i in 0..15 - backoff_passed {
        fail(&s, &format!("u{i}")).await;
    }
    let (before, _) = db_bytes(&s, &site).await;
    assert_eq!(flood(&s, 1000, |i| format!("{i:0>64}")).await, 0);
    let (after, wal_2) = db_bytes(&s, &site).await;
    growth += after.saturating_sub(before);
    let per_million = growth as f64 * 1_000_000.0 / 2000.0;
    eprintln!(
        "2,000 throttled attempts: database +{growth} bytes ({:.0} KiB per million), \
         WAL at most {} KiB",
        per_million / 1024.0,
        wal_1.max(wal_2) / 1024
    );
    // SPEC: 100,000 throttled attempts grow the database by under 1 MiB.
    assert!(
        growth as f64 * 100_000.0 / 2000.0 < 1024.0 * 1024.0,
        "+{growth} bytes for 2,000 attempts"
    );
    // Throttled attempts are counted in memory and written once per sync interval, so the
    // WAL sees a handful of transactions, not one per attempt.
    assert!(
        wal_1.max(wal_2) < 1024 * 1024,
        "WAL reached {wal_1} / {wal_2} bytes"
    );
    // None of them was hashed, and every one is accounted for in a handful of records.
    let text = s.get("/metrics", None).await.text().await.unwrap();
    let hashed = 20;
    assert_eq!(
        metric(&text, "keymint_logins_total{outcome=\"failed\"}"),
        hashed as f64
    );
    let (throttled, records) = login_audit(&s.app, "throttled").await;
    assert_eq!(throttled as usize, 2000 - backoff_passed);
    assert!(records <= 6, "{records} audit records for 2,000 attempts");
    let limits = login_limits::Entity::find().count(&s.app.db).await.unwrap();
    assert_eq!(
        limits as usize,
        17 - backoff_passed,
        "the usernames and one address"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_usernames_are_refused_before_throttling_or_audit() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    for name in ["x".repeat(65), "y".repeat(60 * 1024)] {
        let r = s
            .post_json(
                "/auth/login",
                &json!({"username": name, "password": "wrong-password"}),
                None,
            )
            .await;
        assert_error(r, 400, "VALIDATION_ERROR").await;
        let r = form(
            &s,
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", &name),
                ("password", "wrong-password"),
            ],
            None,
        )
        .await;
        assert_eq!(r.status(), 400);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request");
    }
    // A 64-byte name is still a normal (failed) login.
    let r = s
        .post_json(
            "/auth/login",
            &json!({"username": "z".repeat(64), "password": "wrong-password"}),
            None,
        )
        .await;
    assert_error(r, 401, "INVALID_CREDENTIALS").await;
    let events = audit_events::Entity::find().all(&s.app.db).await.unwrap();
    assert_eq!(events.len(), 1, "only the 64-byte attempt is audited");
    assert!(events.iter().all(|e| e.detail.len() < 512));
    let limits = login_limits::Entity::find().count(&s.app.db).await.unwrap();
    assert_eq!(limits, 2, "one username and one address row");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_deletes_audit_events_past_retention() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[("KEYMINT_AUDIT_RETENTION", "1d")]).await;
    let now = keymint::clock::system_now();
    let event = |at: i64, kind: &str| audit_events::ActiveModel {
        at: Set(at),
        kind: Set(kind.into()),
        outcome: Set("ok".into()),
        detail: Set("{}".into()),
        count: Set(1),
        ..Default::default()
    };
    audit_events::Entity::insert_many([event(now - 2 * 86400, "old"), event(now - 3600, "recent")])
        .exec_without_returning(&s.app.db)
        .await
        .unwrap();
    let report = keymint::cleanup::run(&s.app, now).await.unwrap();
    assert_eq!(report.audit_events, 1);
    let kinds: Vec<String> = audit_events::Entity::find()
        .all(&s.app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(!kinds.contains(&"old".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"recent".to_string()), "{kinds:?}");
    s.stop().await;
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_under_concurrent_logins() {
    let site = Site::new(Backend::Sqlite).await;
    // Limits out of the way, so every attempt reaches argon2.
    let p = Proc::spawn(
        &site,
        &[
            ("KEYMINT_LOGIN_USER_FAILURES", "1000000"),
            ("KEYMINT_LOGIN_IP_FAILURES", "1000000"),
        ],
    )
    .await;
    let pid = p.child.id();
    let at_rest = peak_rss_mib(pid);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    for round in 0..2 {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..64 {
            let url = p.url("/auth/login");
            set.spawn(wrong_login(http.clone(), url, format!("r{round}u{i}")));
        }
        while let Some(r) = set.join_next().await {
            assert_eq!(r.unwrap(), 401);
        }
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
    let peak = peak_rss_mib(pid);
    let bound = 64.0 + 20.0 * threads;
    eprintln!(
        "peak RSS: {at_rest:.1} MiB at rest, {peak:.1} MiB after 2 x 64 concurrent logins \
         (bound {bound:.0} MiB for {threads} hashing threads)"
    );
    assert!(peak < bound, "peak RSS {peak:.1} MiB, bound {bound:.0} MiB");
}
