//! Revocation everywhere it can happen (logout, revoke-sessions, disable, RFC 7009), across
//! instances, and cleanup of expired rows.

use std::time::{Duration, Instant};

use keymint::db::entities::{refresh_families, refresh_tokens, revocations};
use reqwest::StatusCode;
use sea_orm::{ActiveValue::Set, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::both_dbs;
use crate::harness::{Backend, Proc, Server, Site, Tokens, login_at, me_status};
use crate::oauth::form;

both_dbs!(
    every_revocation_path_refuses_exactly_the_affected_tokens,
    revocation_reaches_another_process_within_a_second,
    cleanup_removes_exactly_the_expired_rows
);

/// (status of /auth/me, status of /auth/refresh, introspection `active`).
async fn state_of(s: &Server, admin: &str, t: &Tokens) -> (u16, u16, bool, bool) {
    let me = s
        .get("/auth/me", Some(&t.access_token))
        .await
        .status()
        .as_u16();
    let i: Value = s
        .http
        .post(s.url("/oauth/introspect"))
        .bearer_auth(admin)
        .form(&[("token", &t.access_token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ir: Value = s
        .http
        .post(s.url("/oauth/introspect"))
        .bearer_auth(admin)
        .form(&[("token", &t.refresh_token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Probe refresh last: a successful refresh spends the token.
    let rf = s
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": t.refresh_token}),
            None,
        )
        .await
        .status()
        .as_u16();
    (
        me,
        rf,
        i["active"].as_bool().unwrap(),
        ir["active"].as_bool().unwrap(),
    )
}

const DEAD: (u16, u16, bool, bool) = (401, 401, false, false);
const LIVE: (u16, u16, bool, bool) = (200, 200, true, true);

async fn every_revocation_path_refuses_exactly_the_affected_tokens(b: Backend) {
    let site = Site::new(b).await;
    let s = Server::start(&site, &[]).await;
    s.user("admin", "admin-password", &["admin"]).await;
    let admin = s.login("admin", "admin-password").await.access_token;
    let u1 = s.user("u1", "u1-password", &[]).await;
    let u2 = s.user("u2", "u2-password", &[]).await;

    // Logout.
    let (a, bystander) = (
        s.login("u1", "u1-password").await,
        s.login("u2", "u2-password").await,
    );
    let r = s
        .http
        .post(s.url("/auth/logout"))
        .bearer_auth(&a.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(state_of(&s, &admin, &a).await, DEAD, "logout");

    // RFC 7009, access token only: the session's refresh token lives on.
    let b1 = s.login("u1", "u1-password").await;
    assert_eq!(
        form(&s, "/oauth/revoke", &[("token", &b1.access_token)], None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.get("/auth/me", Some(&b1.access_token)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // RFC 7009, refresh token: the whole grant ends.
    let c1 = s.login("u1", "u1-password").await;
    let r = form(
        &s,
        "/oauth/revoke",
        &[
            ("token", &c1.refresh_token),
            ("token_type_hint", "refresh_token"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        state_of(&s, &admin, &c1).await,
        DEAD,
        "oauth revoke of a refresh token"
    );
    // Unknown and garbage tokens: still 200.
    assert_eq!(
        form(&s, "/oauth/revoke", &[("token", "garbage")], None)
            .await
            .status(),
        StatusCode::OK
    );

    // revoke-sessions: every session of u1, none of u2.
    let (d1, d2) = (
        s.login("u1", "u1-password").await,
        s.login("u1", "u1-password").await,
    );
    let r = s
        .http
        .post(s.url(&format!("/admin/users/{}/revoke-sessions", u1.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.json::<Value>().await.unwrap()["revoked_sessions"]
            .as_u64()
            .unwrap()
            >= 2
    );
    assert_eq!(state_of(&s, &admin, &d1).await, DEAD, "revoke-sessions");
    assert_eq!(state_of(&s, &admin, &d2).await, DEAD, "revoke-sessions");
    assert_eq!(
        state_of(&s, &admin, &bystander).await,
        LIVE,
        "an unrelated user's session"
    );

    // Disable u2: its sessions die and it can no longer log in.
    let e = s.login("u2", "u2-password").await;
    let r = s
        .http
        .patch(s.url(&format!("/admin/users/{}", u2.id)))
        .bearer_auth(&admin)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(state_of(&s, &admin, &e).await, DEAD, "disabled user");
    let r = s
        .post_json(
            "/auth/login",
            &json!({"username": "u2", "password": "u2-password"}),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // u1 (re-enabled all along) still logs in and works.
    let f = s.login("u1", "u1-password").await;
    assert_eq!(state_of(&s, &admin, &f).await, LIVE);

    // The audit trail saw all of it.
    let page: Value = s
        .get("/admin/audit?kind=token.revoke&limit=100", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert!(page["events"].as_array().unwrap().len() >= 4, "{page}");
    let failed: Value = s
        .get("/admin/audit?kind=login&outcome=failed", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !failed["events"].as_array().unwrap().is_empty(),
        "failed logins are audited"
    );
    s.stop().await;
}

async fn revocation_reaches_another_process_within_a_second(b: Backend) {
    let site = Site::new(b).await;
    let env = [("KEYMINT_BOOTSTRAP_ADMIN", "root:root-password")];
    let a = Proc::spawn(&site, &env).await;
    let bp = Proc::spawn(&site, &env).await;
    let http = reqwest::Client::new();
    let t = login_at(&http, &a.base, "root", "root-password").await;
    assert_eq!(me_status(&http, &bp.base, &t.access_token).await.0, 200);
    let r = http
        .post(a.url("/auth/logout"))
        .bearer_auth(&t.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let start = Instant::now();
    loop {
        let (st, body) = me_status(&http, &bp.base, &t.access_token).await;
        if st == 401 {
            assert_eq!(body["error"], "TOKEN_REVOKED");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the other instance still accepts a revoked token after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "revocation reached the other process after {:?}",
        start.elapsed()
    );
}

async fn cleanup_removes_exactly_the_expired_rows(b: Backend) {
    let site = Site::new(b).await;
    let s = Server::start(&site, &[("KEYMINT_LEEWAY", "0s")]).await;
    let db = &s.app.db;
    let now = 2_000_000_000i64;
    let rev = |i: i64, exp: i64| revocations::ActiveModel {
        kind: Set("jti".into()),
        value: Set(format!("j{i}")),
        expires_at: Set(exp),
        created_at: Set(now - 100),
        reason: Set("test".into()),
        ..Default::default()
    };
    let exps = [now - 10, now, now + 1, now + 1000, now - 1];
    revocations::Entity::insert_many(exps.iter().enumerate().map(|(i, e)| rev(i as i64, *e)))
        .exec_without_returning(db)
        .await
        .unwrap();
    let fam = |id: &str, exp: i64| refresh_families::ActiveModel {
        id: Set(id.into()),
        user_id: Set(None),
        client_id: Set(None),
        scope: Set("profile".into()),
        audience: Set("x".into()),
        created_at: Set(now - 100),
        expires_at: Set(exp),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        sso_id: Set(None),
    };
    refresh_families::Entity::insert_many([fam("old", now - 5), fam("live", now + 50)])
        .exec_without_returning(db)
        .await
        .unwrap();
    let tok = |jti: &str, family: &str, exp: i64| refresh_tokens::ActiveModel {
        jti: Set(jti.into()),
        family_id: Set(family.into()),
        issued_at: Set(now - 100),
        expires_at: Set(exp),
        used_at: Set(None),
        replaced_by: Set(None),
        revoked_at: Set(None),
        access_claims: Set(None),
    };
    refresh_tokens::Entity::insert_many([
        tok("t1", "old", now - 5),
        tok("t2", "live", now - 1),
        tok("t3", "live", now + 50),
    ])
    .exec_without_returning(db)
    .await
    .unwrap();
    let before_revs = revocations::Entity::find().count(db).await.unwrap();

    let r = keymint::cleanup::run(&s.app, now).await.unwrap();
    assert_eq!(
        (r.revocations, r.refresh_tokens, r.refresh_families, r.keys),
        (3, 2, 1, 0),
        "{r:?}"
    );
    assert_eq!(
        revocations::Entity::find().count(db).await.unwrap(),
        before_revs - 3
    );
    let left: Vec<String> = refresh_tokens::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.jti)
        .collect();
    assert_eq!(left, vec!["t3".to_string()]);
    assert!(
        refresh_families::Entity::find_by_id("live".to_string())
            .one(db)
            .await
            .unwrap()
            .is_some()
    );
    // A second pass finds nothing more.
    let r = keymint::cleanup::run(&s.app, now).await.unwrap();
    assert_eq!(
        (r.revocations, r.refresh_tokens, r.refresh_families),
        (0, 0, 0)
    );
    s.stop().await;
}
