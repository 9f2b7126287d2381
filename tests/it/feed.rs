//! `GET /oauth/revocations` (SPEC section 8): client authentication, paging, expiry, and the
//! promise that following the cursor never skips a revocation whatever the commit order.

use std::collections::HashSet;
use std::time::Duration;

use keymint::revocation::{Denylist, Kind};
use reqwest::StatusCode;
use sea_orm::TransactionTrait;
use serde_json::{Value, json};

use crate::both_dbs;
use crate::harness::{Backend, Server, Site, site_db};
use crate::oauth::make_client;

both_dbs!(
    the_feed_lists_every_kind_and_pages_without_gaps,
    the_feed_forgets_an_entry_once_its_tokens_have_expired
);

/// Read one page; (status, body).
async fn page(s: &Server, creds: (&str, &str), query: &str) -> (StatusCode, Value) {
    let r = s
        .http
        .get(s.url(&format!("/oauth/revocations{query}")))
        .basic_auth(creds.0, Some(creds.1))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

/// Follow the feed from `after` to its end with pages of `limit`: the values read, in order,
/// and the cursor at the end.
async fn follow(
    s: &Server,
    creds: (&str, &str),
    mut after: Option<String>,
    limit: usize,
) -> (Vec<(String, String)>, String) {
    let mut seen = Vec::new();
    loop {
        let q = match &after {
            Some(c) => format!("?limit={limit}&after={c}"),
            None => format!("?limit={limit}"),
        };
        let (status, v) = page(s, creds, &q).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let list = v["revocations"].as_array().unwrap();
        for e in list {
            assert!(e["expires_at"].as_i64().unwrap() > 0, "{e}");
            seen.push((
                e["kind"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
            ));
        }
        after = Some(v["cursor"].as_str().unwrap().to_owned());
        if list.len() < limit {
            return (seen, after.unwrap_or_default());
        }
    }
}

async fn the_feed_lists_every_kind_and_pages_without_gaps(b: Backend) {
    let site = Site::new(b).await;
    let s = Server::start(&site, &[]).await;
    s.user("admin", "admin-password", &["admin"]).await;
    let admin = s.login("admin", "admin-password").await.access_token;
    let (id, secret) = make_client(&s, &admin, &["client_credentials"], &["a"], None).await;
    let creds = (id.as_str(), secret.as_str());

    // Who may read it: a client, with the right secret, and nothing else.
    let anonymous = s
        .http
        .get(s.url("/oauth/revocations"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let v: Value = anonymous.json().await.unwrap();
    assert_eq!(v["error"], "invalid_client");
    let (status, v) = page(&s, (&id, "wrong"), "").await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let admin_bearer = s.get("/oauth/revocations", Some(&admin)).await;
    assert_eq!(admin_bearer.status(), StatusCode::UNAUTHORIZED);
    for bad in ["?after=nonsense", "?limit=0", "?limit=10001", "?limit=x"] {
        let (status, v) = page(&s, creds, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["error"], "invalid_request", "{bad}");
    }
    let (status, v) = page(&s, creds, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["revocations"], json!([]));

    // Each kind: a logout (jti and sid), and a deleted client.
    s.user("u", "u-password", &[]).await;
    let t = s.login("u", "u-password").await;
    let claims = crate::harness::segment(&t.access_token, 1);
    let r = s
        .post_json("/auth/logout", &json!({}), Some(&t.access_token))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (gone, _) = make_client(&s, &admin, &["client_credentials"], &["a"], None).await;
    let r = s
        .http
        .delete(s.url(&format!("/admin/clients/{gone}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (seen, end) = follow(&s, creds, None, 1000).await;
    let seen: HashSet<_> = seen.into_iter().collect();
    for want in [
        ("jti".to_owned(), claims["jti"].as_str().unwrap().to_owned()),
        ("sid".to_owned(), claims["sid"].as_str().unwrap().to_owned()),
        ("client".to_owned(), gone.clone()),
    ] {
        assert!(seen.contains(&want), "{want:?} not in {seen:?}");
    }

    // Listed until the token it covers has expired, and no longer than a minute after.
    let (_, v) = page(&s, creds, "?limit=10000").await;
    let exp = claims["exp"].as_i64().unwrap();
    for e in v["revocations"].as_array().unwrap() {
        if e["value"] == claims["jti"] || e["value"] == claims["sid"] {
            let until = e["expires_at"].as_i64().unwrap();
            assert!((exp..=exp + 60).contains(&until), "{e} for exp {exp}");
        }
    }

    // 25 more, read in pages of 10 from where the reader stood: each exactly once, in order.
    let now = s.app.now();
    let mut written = Vec::new();
    for i in 0..25 {
        let value = format!("feed-{i}");
        s.app
            .denylist
            .revoke(Kind::Jti, &value, now + 600, "test", now)
            .await
            .unwrap();
        written.push(("jti".to_owned(), value));
    }
    let (seen, end2) = follow(&s, creds, Some(end), 10).await;
    assert_eq!(seen, written);
    let (status, v) = page(&s, creds, &format!("?after={end2}")).await;
    assert_eq!(
        (status, v["revocations"].clone()),
        (StatusCode::OK, json!([]))
    );
    // An empty page keeps the position. (Not necessarily the same string on Postgres: the
    // cursor also lists the cluster's transactions in flight, and other tests run meanwhile.)
    let cursor = v["cursor"].as_str().unwrap().to_string();
    let (again, _) = follow(&s, creds, Some(cursor), 10).await;
    assert_eq!(again, vec![], "nothing is read twice after an empty page");
    s.stop().await;
}

async fn the_feed_forgets_an_entry_once_its_tokens_have_expired(b: Backend) {
    let site = Site::new(b).await;
    let clock = keymint::clock::Clock::frozen_at(1_900_000_000);
    let s = Server::start_with_clock(&site, &[], clock.clone()).await;
    s.user("admin", "admin-password", &["admin"]).await;
    let admin = s.login("admin", "admin-password").await.access_token;
    let (id, secret) = make_client(&s, &admin, &["client_credentials"], &["a"], None).await;
    let now = s.app.now();
    for (value, ttl) in [("short", 60), ("long", 3600)] {
        s.app
            .denylist
            .revoke(Kind::Jti, value, now + ttl, "test", now)
            .await
            .unwrap();
    }
    let values = |v: &Value| -> Vec<String> {
        v["revocations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["value"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, v) = page(&s, (&id, &secret), "").await;
    assert_eq!(values(&v), ["short", "long"]);
    clock.advance(60);
    let (_, v) = page(&s, (&id, &secret), "").await;
    assert_eq!(
        values(&v),
        ["long"],
        "listed no longer than its tokens live"
    );
    s.stop().await;
}

/// Postgres lets transactions commit in any order: a revocation whose transaction began first
/// but commits last must still reach a reader whose cursor already passed later rows. Here
/// with 8 writers holding their transactions open for random times while a reader follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_late_commits_are_never_skipped() {
    let Some(b) = Backend::postgres("feed::postgres_late_commits_are_never_skipped") else {
        return;
    };
    let site = Site::new(b).await;
    let s = Server::start(&site, &[]).await;
    s.user("admin", "admin-password", &["admin"]).await;
    let admin = s.login("admin", "admin-password").await.access_token;
    let (id, secret) = make_client(&s, &admin, &["client_credentials"], &["a"], None).await;
    let db = site_db(&site).await;
    let now = s.app.now();

    // The pathological order first, deterministically: T1 writes, T2 writes and commits, the
    // reader passes T2's row, then T1 commits.
    let t1 = db.begin().await.unwrap();
    Denylist::insert(&t1, Kind::Jti, "early-late", now + 600, "test", now)
        .await
        .unwrap();
    s.app
        .denylist
        .revoke(Kind::Jti, "later-first", now + 600, "test", now)
        .await
        .unwrap();
    let (seen, cursor) = follow(&s, (&id, &secret), None, 1000).await;
    let names: Vec<&str> = seen.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(names, ["later-first"]);
    t1.commit().await.unwrap();
    let (seen, mut cursor) = follow(&s, (&id, &secret), Some(cursor), 1000).await;
    let names: Vec<&str> = seen.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        names,
        ["early-late"],
        "the late commit is read after it commits"
    );

    // One transaction's rows (one txid) spread over pages: the id orders them.
    let t = db.begin().await.unwrap();
    for i in 0..10 {
        Denylist::insert(&t, Kind::Jti, &format!("span-{i}"), now + 600, "test", now)
            .await
            .unwrap();
    }
    t.commit().await.unwrap();
    let (seen, next) = follow(&s, (&id, &secret), Some(cursor), 3).await;
    let names: Vec<String> = seen.into_iter().map(|(_, v)| v).collect();
    let want: Vec<String> = (0..10).map(|i| format!("span-{i}")).collect();
    assert_eq!(names, want);
    cursor = next;

    // Then at random: 8 writers × 25 rows, each transaction held open 0–40 ms.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let db = db.clone();
            tokio::spawn(async move {
                for i in 0..25u64 {
                    let t = db.begin().await.unwrap();
                    let v = format!("w{w}-{i}");
                    Denylist::insert(&t, Kind::Jti, &v, now + 600, "test", now)
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis((w * 7 + i * 13) % 41)).await;
                    t.commit().await.unwrap();
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    while !writers.iter().all(|w| w.is_finished()) {
        let (got, next) = follow(&s, (&id, &secret), Some(cursor), 7).await;
        seen.extend(got.into_iter().map(|(_, v)| v));
        cursor = next;
    }
    for w in writers {
        w.await.unwrap();
    }
    let (got, _) = follow(&s, (&id, &secret), Some(cursor), 7).await;
    seen.extend(got.into_iter().map(|(_, v)| v));
    let missing: Vec<String> = (0..8)
        .flat_map(|w| (0..25).map(move |i| format!("w{w}-{i}")))
        .filter(|v| !seen.contains(v))
        .collect();
    assert!(missing.is_empty(), "skipped: {missing:?}");
    s.stop().await;
}
