//! Bad input and forged tokens: each gets its documented 4xx, never a 5xx.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use keymint::keys::Purpose;
use keymint::tokens::AccessClaims;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, Server, Site, assert_error, segment};

fn b64json(v: &Value) -> String {
    B64.encode(serde_json::to_vec(v).unwrap())
}

/// Sign `header.payload` with a key pair of our own (not keymint's).
fn forge(header: &Value, claims: &Value, der: &[u8]) -> String {
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    let pair = RsaKeyPair::from_pkcs8(der).unwrap();
    let msg = format!("{}.{}", b64json(header), b64json(claims));
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        msg.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{msg}.{}", B64.encode(sig))
}

async fn me_code(s: &Server, token: &str) -> Value {
    let r = s.get("/auth/me", Some(token)).await;
    assert!(
        r.status().is_client_error(),
        "expected 4xx, got {}",
        r.status()
    );
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_malformed_tokens_are_refused() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    s.user("mallory", "mallory-password", &[]).await;
    let t = s.login("mallory", "mallory-password").await;
    let header = segment(&t.access_token, 0);
    let claims = segment(&t.access_token, 1);
    let kid = header["kid"].as_str().unwrap().to_string();
    let [h64, c64, sig64]: [&str; 3] = t
        .access_token
        .split('.')
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();

    let mut cases: Vec<(&str, String)> = vec![
        ("garbage", "not-a-token".into()),
        ("empty segments", "..".into()),
        (
            "non-utf8 base64",
            format!("{}.{}.{}", B64.encode([0xff, 0xfe, 0x80]), c64, sig64),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64json(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
                c64
            ),
        ),
        (
            "alg none, original signature",
            format!(
                "{}.{}.{}",
                b64json(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
                c64,
                sig64
            ),
        ),
        (
            "unknown kid",
            format!(
                "{}.{}.{}",
                b64json(&json!({"alg": "RS256", "typ": "at+jwt", "kid": "no-such-kid"})),
                c64,
                sig64
            ),
        ),
        (
            "kid path traversal",
            format!(
                "{}.{}.{}",
                b64json(&json!({"alg": "RS256", "typ": "at+jwt", "kid": "../../keys/kek"})),
                c64,
                sig64
            ),
        ),
        (
            "kid sql injection",
            format!(
                "{}.{}.{}",
                b64json(&json!({"alg": "RS256", "typ": "at+jwt", "kid": "' OR '1'='1"})),
                c64,
                sig64
            ),
        ),
        ("tampered payload", {
            let mut c = claims.clone();
            c["roles"] = json!(["admin"]);
            format!("{h64}.{}.{sig64}", b64json(&c))
        }),
        (
            "truncated signature",
            format!("{h64}.{c64}.{}", &sig64[..20]),
        ),
        ("refresh token as access", t.refresh_token.clone()),
        ("duplicate claim keys", {
            let raw = r#"{"sub":"x","sub":"y","iss":"http://keymint.test","aud":"http://keymint.test","exp":9999999999,"iat":0,"nbf":0,"jti":"j","type":"access","scope":"","roles":[]}"#;
            format!("{h64}.{}.{sig64}", B64.encode(raw))
        }),
        ("oversized", format!("{h64}.{}.{sig64}", "A".repeat(9000))),
        ("duplicate header keys (alg twice)", {
            let raw = format!(r#"{{"alg":"RS256","alg":"none","typ":"at+jwt","kid":"{kid}"}}"#);
            format!("{}.{c64}.{sig64}", B64.encode(raw))
        }),
        (
            "header that is not an object",
            format!("{}.{c64}.{sig64}", B64.encode("[1,2]")),
        ),
    ];

    // alg confusion: HS256 keyed with the public key material the JWKS publishes.
    let jwks: Value = s
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .unwrap();
    let n = jwks["keys"][0]["n"].as_str().unwrap();
    let pem = keymint::keys::material::public_pem(n, "AQAB").unwrap();
    for secret in [pem.as_bytes().to_vec(), B64.decode(n).unwrap()] {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(jwks["keys"][0]["kid"].as_str().unwrap().into());
        h.typ = Some("at+jwt".into());
        let tok = jsonwebtoken::encode(
            &h,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();
        cases.push(("HS256 with the public key", tok));
    }
    // A key of our own, with keymint's kid, and with jku/jwk headers pointing at our key.
    let ours = keymint::keys::material::generate(2048).unwrap();
    cases.push((
        "signed by another key",
        forge(&header, &claims, &ours.pkcs8_der),
    ));
    let mut evil = header.clone();
    evil["jku"] = json!("http://evil.example/jwks.json");
    evil["x5u"] = json!("http://evil.example/cert.pem");
    evil["jwk"] = json!({"kty": "RSA", "n": ours.n, "e": ours.e, "kid": ours.kid});
    cases.push((
        "jku/x5u/jwk pointing elsewhere",
        forge(&evil, &claims, &ours.pkcs8_der),
    ));
    evil["kid"] = json!(ours.kid);
    cases.push((
        "kid of an embedded jwk",
        forge(&evil, &claims, &ours.pkcs8_der),
    ));

    for (name, token) in &cases {
        let body = me_code(&s, token).await;
        assert_eq!(body["error"], "INVALID_TOKEN", "{name}: {body}");
    }
    // The genuine token still works, so the refusals above are about the forgeries.
    assert_eq!(
        s.get("/auth/me", Some(&t.access_token)).await.status(),
        StatusCode::OK
    );

    // Access token presented as a refresh token.
    let r = s
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": t.access_token}),
            None,
        )
        .await;
    assert_error(r, 401, "INVALID_TOKEN").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_checked_with_keymints_own_key() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    let u = s.user("trent", "trent-password", &[]).await;
    let now = keymint::clock::system_now();
    let base = AccessClaims {
        iss: "http://keymint.test".into(),
        sub: u.id.clone(),
        aud: "http://keymint.test".into(),
        exp: now + 600,
        iat: now,
        nbf: now,
        jti: "j1".into(),
        token_type: "access".into(),
        scope: "profile".into(),
        roles: vec![],
        sid: None,
        client_id: None,
    };
    let sign = |c: &AccessClaims| {
        s.app
            .tokens
            .sign(&s.app.keys.ring(), Purpose::Access, c)
            .unwrap()
    };
    assert_eq!(
        s.get("/auth/me", Some(&sign(&base))).await.status(),
        StatusCode::OK,
        "control"
    );

    let expired = AccessClaims {
        exp: now - 31,
        iat: now - 900,
        nbf: now - 900,
        ..base.clone()
    };
    assert_error(
        s.get("/auth/me", Some(&sign(&expired))).await,
        401,
        "TOKEN_EXPIRED",
    )
    .await;
    // Within the 30 s leeway it still passes.
    let barely = AccessClaims {
        exp: now - 10,
        ..base.clone()
    };
    assert_eq!(
        s.get("/auth/me", Some(&sign(&barely))).await.status(),
        StatusCode::OK
    );
    let future = AccessClaims {
        nbf: now + 120,
        ..base.clone()
    };
    assert_error(
        s.get("/auth/me", Some(&sign(&future))).await,
        401,
        "INVALID_TOKEN",
    )
    .await;
    let wrong_iss = AccessClaims {
        iss: "http://evil.example".into(),
        ..base.clone()
    };
    assert_error(
        s.get("/auth/me", Some(&sign(&wrong_iss))).await,
        401,
        "INVALID_TOKEN",
    )
    .await;
    let wrong_aud = AccessClaims {
        aud: "http://other.example".into(),
        ..base.clone()
    };
    assert_error(
        s.get("/auth/me", Some(&sign(&wrong_aud))).await,
        401,
        "INVALID_TOKEN",
    )
    .await;
    let wrong_type = AccessClaims {
        token_type: "refresh".into(),
        ..base.clone()
    };
    assert_error(
        s.get("/auth/me", Some(&sign(&wrong_type))).await,
        401,
        "INVALID_TOKEN",
    )
    .await;
    // An access-key signature on a token typed as refresh is no refresh token.
    let r = s
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": sign(&base)}),
            None,
        )
        .await;
    assert_error(r, 401, "INVALID_TOKEN").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_documented_errors() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    s.user("peggy", "peggy-password", &[]).await;

    // Unknown user and wrong password: byte-identical answers.
    let a = s
        .post_json(
            "/auth/login",
            &json!({"username": "peggy", "password": "wrong-password"}),
            None,
        )
        .await;
    let b = s
        .post_json(
            "/auth/login",
            &json!({"username": "nobody", "password": "wrong-password"}),
            None,
        )
        .await;
    assert_eq!(
        (a.status(), b.status()),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        a.headers().get("www-authenticate"),
        b.headers().get("www-authenticate")
    );
    let (a, b) = (a.text().await.unwrap(), b.text().await.unwrap());
    assert_eq!(a, b);
    assert_eq!(
        serde_json::from_str::<Value>(&a).unwrap()["error"],
        "INVALID_CREDENTIALS"
    );

    let raw = |body: &'static str| {
        s.http
            .post(s.url("/auth/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_error(raw("{not json").await.unwrap(), 400, "VALIDATION_ERROR").await;
    assert_error(
        raw(r#"{"username":"peggy"}"#).await.unwrap(),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        raw(r#"{"username":1,"password":2}"#).await.unwrap(),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(raw("[]").await.unwrap(), 400, "VALIDATION_ERROR").await;
    let r = s
        .http
        .post(s.url("/auth/login"))
        .body(r#"{"username":"a","password":"b"}"#)
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "VALIDATION_ERROR").await;
    let r = s
        .http
        .post(s.url("/auth/login"))
        .header("content-type", "application/json")
        .body(vec![0xff, 0xfe, 0x00])
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "VALIDATION_ERROR").await;
    let big = format!(
        r#"{{"username":"peggy","password":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let r = s
        .http
        .post(s.url("/auth/login"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_error(r, 413, "PAYLOAD_TOO_LARGE").await;
    let r = s
        .post_json("/auth/refresh", &json!({"refresh_token": "garbage"}), None)
        .await;
    assert_error(r, 401, "INVALID_TOKEN").await;
    let r = s.post_json("/auth/refresh", &json!({}), None).await;
    assert_error(r, 400, "VALIDATION_ERROR").await;

    assert_error(s.get("/auth/me", None).await, 401, "MISSING_TOKEN").await;
    let r = s
        .http
        .get(s.url("/auth/me"))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "MISSING_TOKEN").await;
    let r = s.get("/no/such/route", None).await;
    assert_error(r, 404, "NOT_FOUND").await;
    let t = s.login("peggy", "peggy-password").await;
    let r = s
        .http
        .post(s.url("/auth/logout"))
        .bearer_auth(&t.access_token)
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "VALIDATION_ERROR").await;
    s.stop().await;
}
