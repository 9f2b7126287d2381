//! Login, me, refresh rotation, reuse detection, concurrency, logout, restart.

use reqwest::StatusCode;
use serde_json::json;

use crate::both_dbs;
use crate::harness::{Backend, Server, Site, assert_error, segment};

both_dbs!(
    login_me_and_token_shape,
    refresh_rotation_and_reuse,
    concurrent_refresh_one_winner,
    grace_retries_get_the_same_successor,
    logout_revokes_token_and_family,
    restart_keeps_keys_and_tokens,
    jwks_caching_and_contents
);

async fn login_me_and_token_shape(b: Backend) {
    let site = Site::new(b).await;
    let s = Server::start(&site, &[]).await;
    let alice = s.user("alice", "correct horse", &["admin", "ops"]).await;

    let r = s
        .post_json(
            "/auth/login",
            &json!({"username": "alice", "password": "correct horse"}),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let t: crate::harness::Tokens = r.json().await.unwrap();
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.expires_in, 900);
    assert_eq!(t.refresh_expires_in, 30 * 86400);

    let h = segment(&t.access_token, 0);
    assert_eq!(h["alg"], "RS256");
    assert_eq!(h["typ"], "at+jwt");
    let c = segment(&t.access_token, 1);
    assert_eq!(c["iss"], "http://keymint.test");
    assert_eq!(c["aud"], "http://keymint.test");
    assert_eq!(c["sub"], alice.id);
    assert_eq!(c["type"], "access");
    assert_eq!(c["roles"], json!(["admin", "ops"]));
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
    assert!(
        c["jti"].is_string() && c["sid"].is_string() && c["nbf"].is_i64() && c["scope"].is_string()
    );

    let rh = segment(&t.refresh_token, 0);
    assert_eq!(rh["typ"], "JWT");
    assert_ne!(
        rh["kid"], h["kid"],
        "refresh tokens are signed by a refresh key"
    );
    let rc = segment(&t.refresh_token, 1);
    assert_eq!(rc["type"], "refresh");
    assert_eq!(rc["aud"], "http://keymint.test");
    assert_eq!(rc["fam"], c["sid"]);

    let me = s.get("/auth/me", Some(&t.access_token)).await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(
        me,
        json!({"id": alice.id, "username": "alice", "roles": ["admin", "ops"]})
    );
    s.stop().await;
}

async fn refresh_rotation_and_reuse(b: Backend) {
    let site = Site::new(b).await;
    let s = Server::start(&site, &[]).await;
    s.user("bob", "bob-password", &[]).await;
    let first = s.login("bob", "bob-password").await;

    let r = s
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": first.refresh_token}),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let second: crate::harness::Tokens = r.json().await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(
        segment(&second.access_token, 1)["sid"],
        segment(&first.access_token, 1)["sid"],
        "same family"
    );
    assert_eq!(
        s.get("/auth/me", Some(&second.access_token)).await.status(),
        StatusCode::OK
    );

    // The rotated-out token presented again: reuse → the whole family dies.
    let r = s
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": first.refresh_token}),
            None,
        )
        .await;
    assert_error(r, 401, "REFRESH_TOKEN_REUSED").await;
    let r = s
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": second.refresh_token}),
            None,
        )
        .await;
    assert_error(r, 401, "TOKEN_REVOKED").await;
    assert_error(
        s.get("/auth/me", Some(&second.access_token)).await,
        401,
        "TOKEN_REVOKED",
    )
    .await;
    assert_error(
        s.get("/auth/me", Some(&first.access_token)).await,
        401,
        "TOKEN_REVOKED",
    )
    .await;

    // Another session of the same user is untouched.
    let other = s.login("bob", "bob-password").await;
    assert_eq!(
        s.get("/auth/me", Some(&other.access_token)).await.status(),
        StatusCode::OK
    );
    let r = s
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": other.refresh_token}),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    s.stop().await;
}

async fn concurrent_refresh_one_winner(b: Backend) {
    let site = Site::new(b).await;
    let s = Server::start(&site, &[]).await;
    s.user("carol", "carol-password", &[]).await;
    let t = s.login("carol", "carol-password").await;
    // Ten tasks on the multi-threaded runtime, released together.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (http, url, token, barrier) = (
                s.http.clone(),
                s.url("/auth/refresh"),
                t.refresh_token.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                let r = http
                    .post(url)
                    .json(&json!({"refresh_token": token}))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json::<serde_json::Value>().await.unwrap())
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => ok += 1,
            401 => {
                let code = body["error"].as_str().unwrap();
                assert!(
                    code == "REFRESH_TOKEN_REUSED" || code == "TOKEN_REVOKED",
                    "{body}"
                );
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert_eq!(ok, 1, "exactly one of ten concurrent refreshes succeeds");
    s.stop().await;
}

async fn logout_revokes_token_and_family(b: Backend) {
    let site = Site::new(b).await;
    let s = Server::start(&site, &[]).await;
    s.user("dave", "dave-password", &[]).await;
    let a = s.login("dave", "dave-password").await;
    let other = s.login("dave", "dave-password").await;

    let r = s
        .http
        .post(s.url("/auth/logout"))
        .bearer_auth(&a.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_error(
        s.get("/auth/me", Some(&a.access_token)).await,
        401,
        "TOKEN_REVOKED",
    )
    .await;
    let r = s
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": a.refresh_token}),
            None,
        )
        .await;
    assert_error(r, 401, "TOKEN_REVOKED").await;
    // Logging out again with the revoked token is refused, not a 500.
    let r = s
        .http
        .post(s.url("/auth/logout"))
        .bearer_auth(&a.access_token)
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "TOKEN_REVOKED").await;

    // The other session survives, and its own logout can also end a named refresh family.
    assert_eq!(
        s.get("/auth/me", Some(&other.access_token)).await.status(),
        StatusCode::OK
    );
    let third = s.login("dave", "dave-password").await;
    let r = s
        .post_json(
            "/auth/logout",
            &json!({"refresh_token": third.refresh_token}),
            Some(&other.access_token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": third.refresh_token}),
            None,
        )
        .await;
    assert_error(r, 401, "TOKEN_REVOKED").await;

    let r = s.http.post(s.url("/auth/logout")).send().await.unwrap();
    assert_error(r, 401, "MISSING_TOKEN").await;
    // A refresh token in the body that does not verify is nothing more to revoke: the
    // logout still happens and says so (it once revoked the session and answered 400).
    let g = s.login("dave", "dave-password").await;
    let r = s
        .post_json(
            "/auth/logout",
            &json!({"refresh_token": "garbage"}),
            Some(&g.access_token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_error(
        s.get("/auth/me", Some(&g.access_token)).await,
        401,
        "TOKEN_REVOKED",
    )
    .await;
    s.stop().await;
}

async fn restart_keeps_keys_and_tokens(b: Backend) {
    let site = Site::new(b).await;
    let s = Server::start(&site, &[]).await;
    s.user("erin", "erin-password", &[]).await;
    let t = s.login("erin", "erin-password").await;
    let jwks_before: serde_json::Value = s
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .unwrap();
    s.stop().await;

    let s = Server::start(&site, &[]).await;
    let jwks_after: serde_json::Value = s
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jwks_before, jwks_after, "the same keys after a restart");
    assert_eq!(
        s.get("/auth/me", Some(&t.access_token)).await.status(),
        StatusCode::OK
    );
    let r = s
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": t.refresh_token}),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    s.stop().await;
}

async fn jwks_caching_and_contents(b: Backend) {
    let site = Site::new(b).await;
    let s = Server::start(&site, &[("KEYMINT_JWKS_MAX_AGE", "120s")]).await;
    let r = s.get("/.well-known/jwks.json", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "public, max-age=120");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let doc: serde_json::Value = r.json().await.unwrap();
    let keys = doc["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the active and the next access key");
    let all = s.app.keys.list().await.unwrap();
    for k in keys {
        assert_eq!(
            (
                k["kty"].as_str(),
                k["use"].as_str(),
                k["alg"].as_str(),
                k["e"].as_str()
            ),
            (Some("RSA"), Some("sig"), Some("RS256"), Some("AQAB"))
        );
        let kid = k["kid"].as_str().unwrap();
        let info = all.iter().find(|i| i.kid == kid).unwrap();
        assert_eq!(info.purpose, keymint::keys::Purpose::Access);
        // kid is the RFC 7638 thumbprint of the published key.
        assert_eq!(
            kid,
            keymint::keys::material::thumbprint(k["n"].as_str().unwrap(), k["e"].as_str().unwrap())
        );
    }
    assert!(
        all.iter()
            .filter(|i| i.purpose == keymint::keys::Purpose::Refresh)
            .all(|i| !keys.iter().any(|k| k["kid"] == i.kid))
    );

    let r = s
        .http
        .get(s.url("/.well-known/jwks.json"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()["etag"], etag.as_str());
    let r = s
        .http
        .get(s.url("/.well-known/jwks.json"))
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let d: serde_json::Value = s
        .get("/.well-known/openid-configuration", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], "http://keymint.test");
    assert_eq!(d["jwks_uri"], "http://keymint.test/.well-known/jwks.json");
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
    for (field, path) in [
        ("token_endpoint", "/oauth/token"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("userinfo_endpoint", "/oauth/userinfo"),
        ("authorization_endpoint", "/oauth/authorize"),
        ("end_session_endpoint", "/oauth/logout"),
    ] {
        assert_eq!(d[field], format!("http://keymint.test{path}"), "{field}");
    }
    assert_eq!(
        d["grant_types_supported"],
        json!([
            "authorization_code",
            "password",
            "refresh_token",
            "client_credentials"
        ])
    );
    let d2: serde_json::Value = s
        .get("/.well-known/oauth-authorization-server", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d, d2);
    assert_eq!(s.get("/healthz", None).await.status(), StatusCode::OK);
    assert_eq!(s.get("/readyz", None).await.status(), StatusCode::OK);
    s.stop().await;
}

/// SPEC section 6: within `KEYMINT_REFRESH_REUSE_GRACE`, a retried refresh returns the very
/// pair the first refresh issued (same jtis), never a second live branch of the family.
async fn grace_retries_get_the_same_successor(b: Backend) {
    use keymint::db::entities::refresh_tokens;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let site = Site::new(b).await;
    let s = Server::start(&site, &[("KEYMINT_REFRESH_REUSE_GRACE", "30s")]).await;
    s.user("gina", "gina-password", &[]).await;
    let t = s.login("gina", "gina-password").await;
    let refresh = |token: String| {
        let r = s
            .http
            .post(s.url("/auth/refresh"))
            .json(&json!({"refresh_token": token}))
            .send();
        async move {
            let r = r.await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<crate::harness::Tokens>().await.unwrap()
        }
    };
    // Eight concurrent refreshes of one token, then a late retry: one successor for all.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        set.spawn(refresh(t.refresh_token.clone()));
    }
    let mut pairs = Vec::new();
    while let Some(p) = set.join_next().await {
        pairs.push(p.unwrap());
    }
    pairs.push(refresh(t.refresh_token.clone()).await);
    let jti = |tok: &str| segment(tok, 1)["jti"].as_str().unwrap().to_string();
    for p in &pairs {
        assert_eq!(jti(&p.refresh_token), jti(&pairs[0].refresh_token));
        assert_eq!(jti(&p.access_token), jti(&pairs[0].access_token));
        assert_eq!(p.refresh_token, pairs[0].refresh_token, "the same bytes");
    }
    let fam = segment(&t.refresh_token, 1)["fam"]
        .as_str()
        .unwrap()
        .to_string();
    let rows = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::FamilyId.eq(fam.clone()))
        .count(&s.app.db)
        .await
        .unwrap();
    assert_eq!(rows, 2, "the original and one successor, no second branch");
    // The successor works, and the family stays healthy.
    let next = refresh(pairs[0].refresh_token.clone()).await;
    assert_eq!(
        s.get("/auth/me", Some(&next.access_token)).await.status(),
        200
    );
    s.stop().await;
}
