//! The key lifecycle: rotation with pre-publication, retirement, revocation, cleanup,
//! several instances, crashes mid-rotation, and traffic across rotations.

use std::time::{Duration, Instant};

use keymint::db::entities::{job_runs, signing_keys};
use keymint::keys::{KeyState, Purpose};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::harness::{
    Backend, Proc, Server, Site, assert_error, kid, login_at, me_status, pyjwt_verify, site_db,
};

/// Each lifecycle scenario on SQLite and on Postgres with local keys, and on SQLite with the
/// keys made and kept in the site's own SoftHSM2 token (skipped, loudly, without the Postgres
/// URL or without SoftHSM2).
macro_rules! lifecycle {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use crate::harness::{Backend, Site};
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Site::new(Backend::Sqlite).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(b) = Backend::postgres(module_path!()) {
                    super::$name(Site::new(b).await).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn pkcs11() {
                if let Some(site) = Site::pkcs11(Backend::Sqlite, module_path!()).await {
                    super::$name(site).await
                }
            }
        }
    )*};
}

lifecycle!(
    rotation_prepublishes_and_old_tokens_verify,
    revoking_the_active_key,
    retired_keys_expire_and_cleanup_removes_them,
    key_changes_reach_other_instances_within_a_second,
    kill_9_during_rotation_keeps_invariants
);

async fn jwks_kids(s: &Server) -> Vec<String> {
    let v: Value = s
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .unwrap();
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

async fn rotation_prepublishes_and_old_tokens_verify(site: Site) {
    let s = Server::start(&site, &[]).await;
    s.user("admin", "admin-password", &["admin"]).await;
    s.user("user", "user-password", &[]).await;
    let admin = s.login("admin", "admin-password").await;
    let before = s.login("user", "user-password").await;
    let old_kid = kid(&before.access_token);
    let published_before = jwks_kids(&s).await;
    let next_before = s
        .app
        .keys
        .active_and_next(Purpose::Access)
        .await
        .unwrap()
        .next;
    assert!(
        published_before.contains(&next_before),
        "the next key is published before it signs"
    );

    let r = s
        .http
        .post(s.url("/admin/keys/rotate"))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rot: Value = r.json().await.unwrap();
    assert_eq!(rot["access"]["active"], next_before.as_str());
    let new_next = rot["access"]["next"].as_str().unwrap().to_string();

    let after = s.login("user", "user-password").await;
    assert_eq!(
        kid(&after.access_token),
        next_before,
        "new tokens carry the promoted kid"
    );
    let published_after = jwks_kids(&s).await;
    assert!(
        published_after.contains(&old_kid),
        "the retired key stays published"
    );
    assert!(published_after.contains(&new_next));
    assert_eq!(published_after.len(), 3);
    // Old token: still accepted by keymint and by a third-party JWKS client.
    assert_eq!(
        s.get("/auth/me", Some(&before.access_token)).await.status(),
        StatusCode::OK
    );
    let (url, tok) = (s.url("/.well-known/jwks.json"), before.access_token.clone());
    let (code, claims) = tokio::task::spawn_blocking(move || pyjwt_verify(&url, &tok))
        .await
        .unwrap();
    assert_eq!(code, 0, "PyJWT refused a pre-rotation token: {claims}");
    let r = s
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": before.refresh_token}),
            None,
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "refresh tokens signed before the rotation still work"
    );

    // Only one purpose.
    let refresh_active = s
        .app
        .keys
        .active_and_next(Purpose::Refresh)
        .await
        .unwrap()
        .active;
    let r = s
        .http
        .post(s.url("/admin/keys/rotate?purpose=access"))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    let rot: Value = r.json().await.unwrap();
    assert_eq!(rot["access"]["active"], new_next.as_str());
    assert_eq!(rot["refresh"]["active"], refresh_active.as_str());

    let keys: Value = s
        .get("/admin/keys", Some(&admin.access_token))
        .await
        .json()
        .await
        .unwrap();
    let old = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == old_kid.as_str())
        .unwrap();
    assert_eq!(old["state"], "retired");
    assert_eq!(
        old["expires_at"].as_i64().unwrap() - old["retired_at"].as_i64().unwrap(),
        900 + 30
    );

    // Authorisation and input errors.
    let r = s
        .http
        .post(s.url("/admin/keys/rotate?purpose=banana"))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "VALIDATION_ERROR").await;
    let r = s
        .http
        .post(s.url("/admin/keys/rotate"))
        .bearer_auth(&after.access_token)
        .send()
        .await
        .unwrap();
    assert_error(r, 403, "FORBIDDEN").await;
    assert_error(s.get("/admin/keys", None).await, 401, "MISSING_TOKEN").await;
    let audit = keymint::db::entities::audit_events::Entity::find()
        .filter(keymint::db::entities::audit_events::Column::Kind.eq("key.rotate"))
        .count(&s.app.db)
        .await
        .unwrap();
    assert_eq!(audit, 3, "two purposes, then one");
    s.stop().await;
}

async fn revoking_the_active_key(site: Site) {
    let s = Server::start(&site, &[]).await;
    s.user("admin", "admin-password", &["admin"]).await;
    let admin = s.login("admin", "admin-password").await;
    let victim = kid(&admin.access_token);
    let next = s
        .app
        .keys
        .active_and_next(Purpose::Access)
        .await
        .unwrap()
        .next;

    let r = s
        .http
        .post(s.url(&format!("/admin/keys/{victim}/revoke")))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["state"], "revoked");
    assert!(
        !jwks_kids(&s).await.contains(&victim),
        "gone from the JWKS at once"
    );
    assert_error(
        s.get("/auth/me", Some(&admin.access_token)).await,
        401,
        "INVALID_TOKEN",
    )
    .await;
    let fresh = s.login("admin", "admin-password").await;
    assert_eq!(kid(&fresh.access_token), next, "the next key took over");
    assert_eq!(
        s.app
            .keys
            .active_and_next(Purpose::Access)
            .await
            .unwrap()
            .active,
        next
    );
    assert_eq!(jwks_kids(&s).await.len(), 2, "a new next key was generated");

    // Revoke the refresh key: refresh tokens it signed are refused.
    let rkid = kid(&fresh.refresh_token);
    let r = s
        .http
        .post(s.url(&format!("/admin/keys/{rkid}/revoke")))
        .bearer_auth(&fresh.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": fresh.refresh_token}),
            None,
        )
        .await;
    assert_error(r, 401, "INVALID_TOKEN").await;

    let r = s
        .http
        .post(s.url("/admin/keys/no-such-kid/revoke"))
        .bearer_auth(&fresh.access_token)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "NOT_FOUND").await;
    let revokes = keymint::db::entities::audit_events::Entity::find()
        .filter(keymint::db::entities::audit_events::Column::Kind.eq("key.revoke"))
        .count(&s.app.db)
        .await
        .unwrap();
    assert_eq!(revokes, 2);
    s.stop().await;
}

async fn retired_keys_expire_and_cleanup_removes_them(site: Site) {
    // Access keys also sign ID tokens: a retired one stays for the longer lifetime of the two.
    let s = Server::start(
        &site,
        &[
            ("KEYMINT_ACCESS_TTL", "30s"),
            ("KEYMINT_ID_TOKEN_TTL", "60s"),
            ("KEYMINT_LEEWAY", "5s"),
        ],
    )
    .await;
    let app = &s.app;
    let t0 = keymint::clock::system_now();
    let old = app
        .keys
        .active_and_next(Purpose::Access)
        .await
        .unwrap()
        .active;
    app.keys.rotate(Purpose::Access, t0).await.unwrap();
    let ring = app.keys.ring();
    assert!(
        ring.verifier(&old, Purpose::Access, t0 + 64).is_some(),
        "verifies until retired_at + ttl + leeway"
    );
    assert!(ring.verifier(&old, Purpose::Access, t0 + 65).is_none());

    // Cleanup at a time before expiry keeps it; after expiry removes exactly it.
    let r = keymint::cleanup::run(app, t0 + 64).await.unwrap();
    assert_eq!(r.keys, 0);
    let r = keymint::cleanup::run(app, t0 + 65).await.unwrap();
    assert_eq!(r.keys, 1);
    assert!(
        signing_keys::Entity::find_by_id(old.clone())
            .one(&app.db)
            .await
            .unwrap()
            .is_none()
    );
    let states: Vec<String> = signing_keys::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.state)
        .collect();
    assert_eq!(states.iter().filter(|s| *s == "active").count(), 2);
    assert_eq!(states.iter().filter(|s| *s == "next").count(), 2);
    s.stop().await;
}

async fn key_changes_reach_other_instances_within_a_second(site: Site) {
    let a = Server::start(&site, &[]).await;
    let bsrv = Server::start(&site, &[]).await;
    a.user("admin", "admin-password", &["admin"]).await;
    let t = a.login("admin", "admin-password").await;
    assert_eq!(
        bsrv.get("/auth/me", Some(&t.access_token)).await.status(),
        StatusCode::OK,
        "tokens cross instances"
    );

    // Rotate on A: B accepts A's tokens signed with the promoted key at once (it was `next`).
    a.app
        .keys
        .rotate(Purpose::Access, keymint::clock::system_now())
        .await
        .unwrap();
    let t2 = a.login("admin", "admin-password").await;
    assert_eq!(
        bsrv.get("/auth/me", Some(&t2.access_token)).await.status(),
        StatusCode::OK
    );

    // Revoke on A: B refuses within a second.
    let victim = kid(&t2.access_token);
    a.app
        .keys
        .revoke(&victim, keymint::clock::system_now())
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let st = bsrv.get("/auth/me", Some(&t2.access_token)).await.status();
        if st == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "B still accepts a key revoked on A after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    eprintln!(
        "key revocation reached the other instance after {:?}",
        start.elapsed()
    );
    a.stop().await;
    bsrv.stop().await;
}

async fn kill_9_during_rotation_keeps_invariants(site: Site) {
    use std::io::BufRead;
    let http = reqwest::Client::new();
    let env = [
        ("KEYMINT_ROTATION_CRON", "* * * * * *"),
        ("KEYMINT_BOOTSTRAP_ADMIN", "root:root-password"),
        ("KEYMINT_LOG_FORMAT", "json"),
    ];
    let mut tokens = Vec::new();
    let mut interrupted = 0;
    // Each instance is killed a set time after its scheduler claims a rotation tick: at once,
    // during key generation, and later (generation or the key transaction), so the kills land
    // inside rotations rather than wherever the wall clock happens to be.
    for phase_ms in [0u64, 100, 300] {
        let mut p = Proc::spawn_with(&site, &env, |cmd| {
            cmd.env("RUST_LOG", "warn,keymint::jobs=info")
                .stderr(std::process::Stdio::piped());
        })
        .await;
        tokens.push(login_at(&http, &p.base, "root", "root-password").await);
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stderr = p.child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let started = tokio::task::spawn_blocking(move || {
            let found = rx
                .iter()
                .find(|l| l.contains("scheduled job started") && l.contains("rotate"));
            (found, rx)
        });
        let (found, rx) = tokio::time::timeout(Duration::from_secs(5), started)
            .await
            .expect("no rotation started within 5 s on a once-a-second schedule")
            .unwrap();
        assert!(found.is_some(), "the instance exited before rotating");
        tokio::time::sleep(Duration::from_millis(phase_ms)).await;
        p.kill9();
        // The rest of what it wrote, up to its death: did that rotation finish first?
        let finished = tokio::task::spawn_blocking(move || {
            rx.iter().any(|l| l.contains("scheduled rotation done"))
        })
        .await
        .unwrap();
        if !finished {
            interrupted += 1;
        }
    }
    eprintln!("{interrupted} of 3 kills landed inside a rotation");
    assert!(
        interrupted >= 2,
        "only {interrupted} of 3 kills landed inside a rotation"
    );
    let p = Proc::spawn(&site, &[]).await;
    let db = site_db(&site).await;
    for purpose in ["access", "refresh"] {
        for state in ["active", "next"] {
            let n = signing_keys::Entity::find()
                .filter(signing_keys::Column::Purpose.eq(purpose))
                .filter(signing_keys::Column::State.eq(state))
                .count(&db)
                .await
                .unwrap();
            assert_eq!(n, 1, "exactly one {state} {purpose} key after crashes");
        }
    }
    let claimed = job_runs::Entity::find()
        .filter(job_runs::Column::Job.eq("rotate"))
        .count(&db)
        .await
        .unwrap();
    assert!(
        claimed >= 3,
        "each instance claimed a rotation tick ({claimed})"
    );
    let revoked = signing_keys::Entity::find()
        .filter(signing_keys::Column::State.eq(KeyState::Revoked.as_str()))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(revoked, 0);
    for t in &tokens {
        let (st, body) = me_status(&http, &p.base, &t.access_token).await;
        assert_eq!(
            st, 200,
            "a token signed before a crash no longer verifies: {body}"
        );
    }
    let last = tokens.last().unwrap();
    let r = http
        .post(p.url("/auth/refresh"))
        .json(&json!({"refresh_token": last.refresh_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Three instances on one Postgres: every scheduled tick rotates exactly once, and tokens from
/// any instance verify on every other right after. Each instance's clock jumps a year per round
/// and the due job runs at once (`jobs::run_due`, what the scheduler calls on each firing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_rotate_once_per_tick() {
    if let Some(b) = Backend::postgres("keys::three_instances_rotate_once_per_tick") {
        three_instances(Site::new(b).await).await;
    }
}

/// The same, with the keys in one SoftHSM2 token shared by the three instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_rotate_once_per_tick_pkcs11() {
    let test = "keys::three_instances_rotate_once_per_tick_pkcs11";
    if let Some(b) = Backend::postgres(test)
        && let Some(site) = Site::pkcs11(b, test).await
    {
        three_instances(site).await;
    }
}

async fn three_instances(site: Site) {
    use keymint::jobs::{Job, run_due};
    // Yearly ticks, a year per round: the wall-clock scheduler (rotation and cleanup) never
    // fires during the test, so only `run_due` rotates and nothing is cleaned up under it.
    let env = [
        ("KEYMINT_BOOTSTRAP_ADMIN", "root:root-password"),
        ("KEYMINT_ROTATION_CRON", "0 0 4 1 1 *"),
        ("KEYMINT_CLEANUP_CRON", "0 0 5 1 1 *"),
    ];
    let first = Server::start(&site, &env).await;
    let (second, third) = tokio::join!(Server::start(&site, &env), Server::start(&site, &env));
    let all = [first, second, third];
    let mut crossings = 0;
    for round in 0..3 {
        for s in &all {
            s.app.clock.advance(366 * 86400);
        }
        let (r0, r1, r2) = tokio::join!(
            run_due(&all[0].app, Job::Rotate, "i0"),
            run_due(&all[1].app, Job::Rotate, "i1"),
            run_due(&all[2].app, Job::Rotate, "i2"),
        );
        let ran = [r0.unwrap(), r1.unwrap(), r2.unwrap()];
        assert_eq!(
            ran.iter().filter(|r| **r).count(),
            1,
            "round {round}: {ran:?}"
        );
        // A second firing in the same tick does nothing.
        assert!(!run_due(&all[0].app, Job::Rotate, "i0").await.unwrap());
        for s in &all {
            s.app.sync_now().await.unwrap();
        }
        for (i, s) in all.iter().enumerate() {
            let t = s.login("root", "root-password").await;
            let other = &all[(i + 1) % 3];
            let (st, body) = me_status(&other.http, &other.base, &t.access_token).await;
            assert_eq!(
                st, 200,
                "token from instance {i} refused by another: {body}"
            );
            crossings += 1;
        }
    }
    let db = site_db(&site).await;
    let ticks = job_runs::Entity::find()
        .filter(job_runs::Column::Job.eq("rotate"))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(ticks, 3);
    for purpose in ["access", "refresh"] {
        let keys = signing_keys::Entity::find()
            .filter(signing_keys::Column::Purpose.eq(purpose))
            .all(&db)
            .await
            .unwrap();
        assert_eq!(keys.iter().filter(|k| k.state == "active").count(), 1);
        assert_eq!(keys.iter().filter(|k| k.state == "next").count(), 1);
        assert_eq!(
            keys.len(),
            2 + 3,
            "{purpose}: two initial keys plus one per tick"
        );
    }
    eprintln!("three instances: 3 rotation ticks, {crossings} cross-instance verifications");
    for s in all {
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_failed_verification_under_traffic_across_rotations() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    s.user("load", "load-password", &[]).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..3 {
        let (http, base, stop) = (s.http.clone(), s.base.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut t = login_at(&http, &base, "load", "load-password").await;
            let (mut n, mut worst) = (0u32, Duration::ZERO);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let (st, body) = me_status(&http, &base, &t.access_token).await;
                assert_eq!(st, 200, "verification failed during rotation: {body}");
                let r = http
                    .post(format!("{base}/auth/refresh"))
                    .json(&json!({"refresh_token": t.refresh_token}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "refresh failed during rotation");
                t = r.json().await.unwrap();
                worst = worst.max(started.elapsed());
                n += 1;
            }
            (n, worst)
        }));
    }
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        s.app
            .keys
            .rotate(Purpose::Access, keymint::clock::system_now())
            .await
            .unwrap();
        s.app
            .keys
            .rotate(Purpose::Refresh, keymint::clock::system_now())
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    let mut worst = Duration::ZERO;
    for w in workers {
        let (n, wst) = w.await.unwrap();
        total += n;
        worst = worst.max(wst);
    }
    assert!(
        total > 10,
        "the workers made progress ({total} me+refresh rounds)"
    );
    eprintln!(
        "{total} me+refresh rounds across 8 rotations; slowest round {worst:?} (debug build)"
    );
    s.stop().await;
}
