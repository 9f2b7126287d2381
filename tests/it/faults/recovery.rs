//! Faults that keys and refresh tokens must survive: a scheduled rotation that fails, rotations
//! racing each other, an instance killed in the middle of refreshes.

use std::time::Duration;

use sea_orm::EntityTrait;
use serde_json::json;

use crate::harness::{Backend, Proc, Server, Site, login_at};

/// Postgres, or a loud skip.
async fn postgres_site(test: &str) -> Option<Site> {
    Some(Site::new(Backend::postgres(test)?).await)
}

/// A scheduled rotation whose first attempts fail (the key table is briefly gone) is retried
/// within its tick, and rotates each purpose exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_scheduled_rotation_is_retried_within_its_tick() {
    use keymint::jobs::{Job, run_due};
    use keymint::keys::Purpose;
    use sea_orm::ConnectionTrait;
    let Some(site) = postgres_site("faults::a_failed_scheduled_rotation_is_retried…").await
    else {
        return;
    };
    // Yearly ticks: only `run_due` rotates here, never the wall-clock scheduler.
    let env = [
        ("KEYMINT_ROTATION_CRON", "0 0 4 1 1 *"),
        ("KEYMINT_CLEANUP_CRON", "0 0 5 1 1 *"),
    ];
    let s = Server::start(&site, &env).await;
    let before = s.app.keys.active_and_next(Purpose::Access).await.unwrap();
    let db = crate::harness::site_db(&site).await;
    db.execute_unprepared("ALTER TABLE signing_keys RENAME TO signing_keys_away")
        .await
        .unwrap();
    s.app.clock.advance(366 * 86400);
    let app = s.app.clone();
    let run = tokio::spawn(async move { run_due(&app, Job::Rotate, "retry-test").await });
    // The first attempts fail meanwhile (retries after 250 ms, then 500 ms).
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !run.is_finished(),
        "the rotation gave up instead of retrying"
    );
    db.execute_unprepared("ALTER TABLE signing_keys_away RENAME TO signing_keys")
        .await
        .unwrap();
    let ran = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("the retried rotation did not finish within 5 s")
        .unwrap()
        .unwrap();
    assert!(ran, "this instance ran the tick");
    let after = s.app.keys.active_and_next(Purpose::Access).await.unwrap();
    assert_eq!(
        after.active, before.next,
        "one rotation: the next key signs now"
    );
    let keys = s.app.keys.list().await.unwrap();
    for p in Purpose::ALL {
        let retired = keys
            .iter()
            .filter(|k| k.purpose == p && k.state == keymint::keys::KeyState::Retired)
            .count();
        assert_eq!(retired, 1, "{p:?} rotated exactly once");
    }
    s.stop().await;
}

/// Concurrent manual rotations queue behind each other: every one answers 200, each rotates
/// once, and one active and one next key remain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_manual_rotations_all_succeed() {
    use keymint::keys::{KeyState, Purpose};
    let Some(site) = postgres_site("faults::concurrent_manual_rotations_all_succeed").await else {
        return;
    };
    let s = Server::start(&site, &[]).await;
    s.user("adm", "admin-password-1", &["admin"]).await;
    let admin = s.login("adm", "admin-password-1").await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (http, url, t) = (
            s.http.clone(),
            s.url("/admin/keys/rotate?purpose=access"),
            admin.access_token.clone(),
        );
        set.spawn(async move { http.post(url).bearer_auth(t).send().await.unwrap().status() });
    }
    while let Some(st) = set.join_next().await {
        assert_eq!(st.unwrap(), 200);
    }
    let keys = s.app.keys.list().await.unwrap();
    let count = |st: KeyState| {
        keys.iter()
            .filter(|k| k.purpose == Purpose::Access && k.state == st)
            .count()
    };
    assert_eq!(
        (
            count(KeyState::Active),
            count(KeyState::Next),
            count(KeyState::Retired)
        ),
        (1, 1, 6)
    );
    s.stop().await;
}

/// Two `keymint serve` processes on Postgres; chains of refreshes run against one of them,
/// which is killed (SIGKILL) in the middle. No refresh family is left with two live tokens,
/// and every chain resumes on the other instance from its last acknowledged refresh token
/// (within the reuse grace, a retry of a refresh whose answer was lost gets its successor).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_refresh_loses_nothing_acknowledged() {
    use keymint::db::entities::refresh_tokens;
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    let Some(site) = postgres_site("faults::kill_9_mid_refresh…").await else {
        return;
    };
    let env = [
        ("KEYMINT_BOOTSTRAP_ADMIN", "root:root-password"),
        ("KEYMINT_REFRESH_REUSE_GRACE", "30s"),
    ];
    let a = Proc::spawn(&site, &env).await;
    let b = Proc::spawn(&site, &env).await;
    let http = reqwest::Client::new();
    let mut chains = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let start = login_at(&http, &b.base, "root", "root-password").await;
        let (http, url) = (http.clone(), a.url("/auth/refresh"));
        chains.spawn(async move {
            let (mut acked, mut n) = (start.refresh_token, 0u32);
            loop {
                let r = http
                    .post(&url)
                    .json(&json!({"refresh_token": acked}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => match r.json::<serde_json::Value>().await {
                        Ok(v) => {
                            acked = v["refresh_token"].as_str().unwrap().to_string();
                            n += 1;
                        }
                        Err(_) => return (acked, n),
                    },
                    Ok(r) => panic!("refresh answered {} before the kill", r.status()),
                    Err(_) => return (acked, n),
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.kill9();
    let mut total = 0;
    while let Some(chain) = chains.join_next().await {
        let (acked, n) = chain.unwrap();
        total += n;
        let r = http
            .post(b.url("/auth/refresh"))
            .json(&json!({"refresh_token": acked}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "a chain could not resume from its last acknowledged token"
        );
    }
    assert!(total > 6, "the chains refreshed before the kill ({total})");
    // No family has two live tokens.
    let db = crate::harness::site_db(&site).await;
    let live = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::UsedAt.is_null())
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .all(&db)
        .await
        .unwrap();
    let mut per_family = std::collections::HashMap::new();
    for t in &live {
        *per_family.entry(t.family_id.clone()).or_insert(0) += 1;
    }
    assert!(
        per_family.values().all(|n| *n == 1),
        "families with several live refresh tokens: {per_family:?}"
    );
    let spent = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::UsedAt.is_not_null())
        .count(&db)
        .await
        .unwrap();
    eprintln!(
        "{total} refreshes acknowledged before the kill; {spent} spent tokens, every family one live token"
    );
}
