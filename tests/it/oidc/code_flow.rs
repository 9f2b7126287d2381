//! The OpenID Connect code flow against a live keymint, and the negative cases of the OpenID
//! Basic OP conformance profile: each checks what the protocol promises (where the browser
//! goes, with which parameters; which tokens stop working), not only a status code.

use reqwest::Response;
use serde_json::{Value, json};

use super::{AFTER_LOGOUT, Browser, REDIRECT, authorize_url, client, location, pkce, query};
use crate::both_dbs;
use crate::harness::{Backend, Server, Site, segment};

both_dbs!(the_code_flow_and_its_conformance_negatives);

async fn exchange(
    s: &Server,
    id: &str,
    secret: Option<&str>,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", verifier),
    ];
    let mut rb = s.http.post(s.url("/oauth/token"));
    match secret {
        Some(sec) => rb = rb.basic_auth(id, Some(sec)),
        None => form.push(("client_id", id)),
    }
    rb.form(&form).send().await.unwrap()
}

async fn oauth_error(r: Response, status: u16, error: &str) {
    let st = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{st}: {text}"));
    assert_eq!(
        (st, body["error"].as_str().unwrap()),
        (status, error),
        "{body}"
    );
}

/// The redirect of an authorization error: to the client, with `error`, `state` and `iss`.
fn assert_error_redirect(r: &Response, s: &Server, error: &str) {
    assert_eq!(r.status(), 302);
    let loc = location(r);
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let q = query(&loc);
    assert_eq!(q.get("error").map(String::as_str), Some(error), "{loc}");
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], s.app.config.issuer);
    assert!(!q.contains_key("code"));
}

async fn the_code_flow_and_its_conformance_negatives(b: Backend) {
    let site = Site::new(b).await;
    let now = keymint::clock::system_now();
    let clock = keymint::clock::Clock::frozen_at(now);
    let s = Server::start_with_clock(&site, &[], clock.clone()).await;
    s.user("admin", "admin-password", &["admin"]).await;
    let admin = s.login("admin", "admin-password").await.access_token;
    let r = s
        .post_json(
            "/admin/users",
            &json!({"username": "alice", "password": "alice-password", "name": "Alice Liddell", "email": "alice@example.com"}),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status(), 201);
    let alice: Value = r.json().await.unwrap();
    let (id, secret) = client(&s, &admin, json!({})).await;
    let secret = secret.unwrap();
    let (verifier, challenge) = pkce();
    let br = Browser::new(&s);

    // Discovery names the flow and its rules.
    let d: Value = s
        .get("/.well-known/openid-configuration", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );

    // Never redirect to an unverified place: unknown client, unregistered redirect URI.
    for url in [
        authorize_url("c_nobody", &challenge, &[]),
        authorize_url(
            &id,
            &challenge,
            &[("redirect_uri", "http://127.0.0.1:9/evil")],
        ),
        authorize_url(&id, &challenge, &[("redirect_uri", "")]),
    ] {
        let r = br.get(&url).await;
        assert_eq!(r.status(), 400, "{url}");
        assert!(r.headers().get("location").is_none());
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    // Every other error goes back to the client with error, state and iss.
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("code_challenge", "")], "invalid_request"),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("code_challenge_method", "")], "invalid_request"),
        (&[("scope", "profile email")], "invalid_scope"),
        (&[("scope", "openid admin")], "invalid_scope"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("prompt", "none")], "login_required"),
        (&[("max_age", "-1")], "invalid_request"),
        (&[("request", "eyJ.x.y")], "request_not_supported"),
    ];
    for (over, error) in cases {
        let r = br.get(&authorize_url(&id, &challenge, over)).await;
        assert_error_redirect(&r, &s, error);
    }

    // No session: to the hosted login and back, then a code bound to everything.
    let url = authorize_url(&id, &challenge, &[("login_hint", "alice")]);
    let r = br.get(&url).await;
    assert_eq!(r.status(), 302);
    let login = location(&r);
    assert!(login.starts_with("/login?"), "{login}");
    assert_eq!(query(&login)["login_hint"], "alice");
    let page = br.get(&login).await.text().await.unwrap();
    assert!(
        page.contains("value=\"alice\""),
        "login_hint prefills the username"
    );
    let r = br.authorize(&url, "alice", "alice-password").await;
    assert_eq!(r.status(), 302);
    let q = query(&location(&r));
    assert!(location(&r).starts_with(REDIRECT));
    assert_eq!(
        (q["state"].as_str(), q["iss"].as_str()),
        ("st-123", s.app.config.issuer.as_str())
    );
    let code = q["code"].clone();
    assert_eq!(code.len(), 43, "256 random bits, base64url");
    let sso = br.set_cookie_line("km_sso");
    assert!(
        sso.contains("HttpOnly") && sso.contains("SameSite=Lax"),
        "{sso}"
    );

    // A code is bound to its verifier, redirect URI and client; failures do not spend it.
    let (other_id, other_secret) = client(&s, &admin, json!({"name": "other"})).await;
    let wrong_verifier = pkce().0;
    oauth_error(
        exchange(&s, &id, Some(&secret), &code, &wrong_verifier, REDIRECT).await,
        400,
        "invalid_grant",
    )
    .await;
    oauth_error(
        exchange(
            &s,
            &id,
            Some(&secret),
            &code,
            &verifier,
            "http://127.0.0.1:9/x",
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    oauth_error(
        exchange(
            &s,
            &other_id,
            other_secret.as_deref(),
            &code,
            &verifier,
            REDIRECT,
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    oauth_error(
        exchange(&s, &id, Some("wrong-secret"), &code, &verifier, REDIRECT).await,
        401,
        "invalid_client",
    )
    .await;
    oauth_error(
        exchange(&s, &id, None, &code, &verifier, REDIRECT).await,
        401,
        "invalid_client",
    )
    .await;

    let r = exchange(&s, &id, Some(&secret), &code, &verifier, REDIRECT).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "openid profile email");
    let (access, id_token) = (
        t["access_token"].as_str().unwrap(),
        t["id_token"].as_str().unwrap(),
    );
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    let (h, c) = (segment(id_token, 0), segment(id_token, 1));
    assert_eq!(
        (h["alg"].as_str(), h["typ"].as_str()),
        (Some("RS256"), Some("JWT"))
    );
    let jwks: Value = s
        .get("/.well-known/jwks.json", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == h["kid"]),
        "signed by a published key"
    );
    assert_eq!(c["iss"], s.app.config.issuer);
    assert_eq!(
        (c["aud"].as_str(), c["azp"].as_str()),
        (Some(id.as_str()), Some(id.as_str()))
    );
    assert_eq!(c["sub"], alice["id"]);
    assert_eq!(c["nonce"], "n-456");
    assert_eq!(c["auth_time"], now);
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        900,
        "KEYMINT_ID_TOKEN_TTL"
    );
    assert_eq!(c["at_hash"], keymint::oidc::at_hash(access));
    let sid = c["sid"].as_str().unwrap().to_string();
    // Verify the ID token's signature with the JWKS, as any relying party does.
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == h["kid"])
        .unwrap();
    let dk = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().unwrap(),
        key["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[&id]);
    v.set_issuer(&[&s.app.config.issuer]);
    v.validate_exp = false;
    jsonwebtoken::decode::<Value>(id_token, &dk, &v)
        .expect("the ID token verifies through the JWKS");

    // Userinfo by the access token; the ID token is never an access token.
    let u: Value = s
        .get("/oauth/userinfo", Some(access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        u,
        json!({"sub": alice["id"], "preferred_username": "alice", "name": "Alice Liddell", "email": "alice@example.com", "email_verified": false})
    );
    for path in ["/oauth/userinfo", "/auth/me"] {
        let r = s.get(path, Some(id_token)).await;
        assert_eq!(r.status(), 401, "{path} refuses an ID token");
    }
    let intro = s
        .http
        .post(s.url("/oauth/introspect"))
        .bearer_auth(&admin)
        .form(&[("token", id_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(intro.json::<Value>().await.unwrap()["active"], false);
    // A token without `openid` gets insufficient_scope from userinfo.
    let pw = s.login("alice", "alice-password").await.access_token;
    let r = s.get("/oauth/userinfo", Some(&pw)).await;
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );

    // A second use of the code: invalid_grant, and everything the first use issued dies.
    oauth_error(
        exchange(&s, &id, Some(&secret), &code, &verifier, REDIRECT).await,
        400,
        "invalid_grant",
    )
    .await;
    let r = s.get("/oauth/userinfo", Some(access)).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "TOKEN_REVOKED");
    let r = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap();
    oauth_error(r, 400, "invalid_grant").await;

    // With the session: a code at once (the SSO session), with a nonce of its own.
    let (verifier2, challenge2) = pkce();
    let r = br
        .get(&authorize_url(&id, &challenge2, &[("nonce", "second")]))
        .await;
    let code2 = query(&location(&r))["code"].clone();
    let t2: Value = exchange(&s, &id, Some(&secret), &code2, &verifier2, REDIRECT)
        .await
        .json()
        .await
        .unwrap();
    let c2 = segment(t2["id_token"].as_str().unwrap(), 1);
    assert_eq!(
        (c2["nonce"].as_str(), c2["sid"].as_str()),
        (Some("second"), Some(sid.as_str()))
    );
    let refresh2 = t2["refresh_token"].as_str().unwrap().to_string();
    // A code expires after 60 s.
    let (v3, ch3) = pkce();
    let r = br.get(&authorize_url(&id, &ch3, &[])).await;
    let code3 = query(&location(&r))["code"].clone();
    clock.advance(61);
    oauth_error(
        exchange(&s, &id, Some(&secret), &code3, &v3, REDIRECT).await,
        400,
        "invalid_grant",
    )
    .await;

    // max_age: an authentication 61 s old is too old for max_age=30 (prompt=none says so),
    // and a fresh login satisfies it; prompt=login always asks.
    let r = br
        .get(&authorize_url(
            &id,
            &challenge,
            &[("max_age", "30"), ("prompt", "none")],
        ))
        .await;
    assert_error_redirect(&r, &s, "login_required");
    let r = br
        .get(&authorize_url(&id, &challenge, &[("max_age", "30")]))
        .await;
    assert!(
        location(&r).starts_with("/login?"),
        "max_age sends the user to sign in again"
    );
    let r = br
        .get(&authorize_url(&id, &challenge, &[("max_age", "300")]))
        .await;
    assert!(
        location(&r).starts_with(REDIRECT),
        "within max_age: no new login"
    );
    let r = br
        .get(&authorize_url(&id, &challenge, &[("prompt", "login")]))
        .await;
    assert!(location(&r).starts_with("/login?"));
    let (v4, ch4) = pkce();
    let r = br
        .authorize(
            &authorize_url(&id, &ch4, &[("prompt", "login")]),
            "alice",
            "alice-password",
        )
        .await;
    let code4 = query(&location(&r))["code"].clone();
    let t4: Value = exchange(&s, &id, Some(&secret), &code4, &v4, REDIRECT)
        .await
        .json()
        .await
        .unwrap();
    let c4 = segment(t4["id_token"].as_str().unwrap(), 1);
    assert_eq!(c4["auth_time"], now + 61, "the new authentication's time");

    // RP-initiated logout: an unregistered destination is refused on a page.
    let hint = t4["id_token"].as_str().unwrap();
    let bad = format!(
        "/oauth/logout?id_token_hint={hint}&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fevil"
    );
    let r = br.get(&bad).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // Without a hint, the user confirms first: nothing ends yet.
    let r = br.get("/oauth/logout").await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("action=\"/oauth/logout\""));
    let r = br
        .get(&authorize_url(&id, &challenge, &[("prompt", "none")]))
        .await;
    assert!(query(&location(&r)).contains_key("code"), "still signed in");
    // With the hint: signed out, sent back with state, the families revoked.
    let out = format!(
        "/oauth/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye-1",
        urlenc(AFTER_LOGOUT)
    );
    let r = br.get(&out).await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), format!("{AFTER_LOGOUT}?state=bye-1"));
    assert!(br.cookie("km_sso").is_none(), "the SSO cookie is cleared");
    let r = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh2),
        ])
        .send()
        .await
        .unwrap();
    oauth_error(r, 400, "invalid_grant").await;
    let r = s
        .get(
            "/oauth/userinfo",
            Some(t4["access_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        r.status(),
        401,
        "access tokens of the ended session are refused"
    );
    let r = br
        .get(&authorize_url(&id, &challenge, &[("prompt", "none")]))
        .await;
    assert_error_redirect(&r, &s, "login_required");
    let kept = s.get("/auth/me", Some(&pw)).await;
    assert_eq!(
        kept.status(),
        200,
        "a session not started by the browser lives on"
    );
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_clients_and_consent() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    s.user("admin", "admin-password", &["admin"]).await;
    s.user("bob", "bob-password", &[]).await;
    let admin = s.login("admin", "admin-password").await.access_token;

    // A public client: no secret; only code and refresh grants; PKCE as for everyone.
    let r = s
        .post_json(
            "/admin/clients",
            &json!({"name": "spa", "grant_types": ["client_credentials"], "public": true}),
            Some(&admin),
        )
        .await;
    assert_eq!(
        r.status(),
        400,
        "a public client cannot hold client_credentials"
    );
    let r = s
        .post_json(
            "/admin/clients",
            &json!({"name": "spa", "grant_types": ["authorization_code"]}),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status(), 400, "the code grant needs a redirect URI");
    let r = s.post_json("/admin/clients", &json!({"name": "spa", "grant_types": ["authorization_code"], "redirect_uris": ["http://app.example/cb"]}), Some(&admin)).await;
    assert_eq!(r.status(), 400, "plain http only on loopback");
    let (spa, none) = client(&s, &admin, json!({"public": true, "scopes": []})).await;
    assert!(none.is_none(), "a public client gets no secret");
    let br = Browser::new(&s);
    let (verifier, challenge) = pkce();
    let r = br
        .authorize(
            &authorize_url(&spa, &challenge, &[("scope", "openid profile")]),
            "bob",
            "bob-password",
        )
        .await;
    let code = query(&location(&r))["code"].clone();
    let missing = s
        .http
        .post(s.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &spa),
        ])
        .send()
        .await
        .unwrap();
    oauth_error(missing, 400, "invalid_grant").await;
    let with_secret = exchange(&s, &spa, Some("anything"), &code, &verifier, REDIRECT).await;
    oauth_error(with_secret, 401, "invalid_client").await;
    let r = exchange(&s, &spa, None, &code, &verifier, REDIRECT).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let access = t["access_token"].as_str().unwrap();
    // Identified, not authenticated: a public client may not introspect.
    let r = s
        .http
        .post(s.url("/oauth/introspect"))
        .form(&[("token", access), ("client_id", &spa)])
        .send()
        .await
        .unwrap();
    oauth_error(r, 401, "invalid_client").await;
    let r = s
        .http
        .post(s.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", &spa),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "a public client refreshes with its id alone"
    );
    // email was not registered for this client.
    let r = br.get(&authorize_url(&spa, &challenge, &[])).await;
    assert_error_redirect(&r, &s, "invalid_scope");

    // Consent: asked once per user, client and scope set; deny says access_denied.
    let (app, secret) = client(
        &s,
        &admin,
        json!({"name": "Photo <Printer>", "consent": true}),
    )
    .await;
    let r = br
        .get(&authorize_url(&app, &challenge, &[("prompt", "none")]))
        .await;
    assert_error_redirect(&r, &s, "consent_required");
    let page = br.get(&authorize_url(&app, &challenge, &[])).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Photo &lt;Printer&gt;"),
        "the client's name is escaped"
    );
    let (request, csrf) = (
        super::hidden(&html, "request"),
        super::hidden(&html, "csrf"),
    );
    let forged = br
        .post_form(
            "/oauth/consent",
            &[
                ("request", &request),
                ("csrf", "forged"),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(forged.status(), 403);
    let r = br
        .post_form(
            "/oauth/consent",
            &[("request", &request), ("csrf", &csrf), ("decision", "deny")],
        )
        .await;
    assert_error_redirect(&r, &s, "access_denied");
    let r = br
        .post_form(
            "/oauth/consent",
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("decision", "allow"),
            ],
        )
        .await;
    assert!(query(&location(&r)).contains_key("code"));
    let r = br.get(&authorize_url(&app, &challenge, &[])).await;
    assert_eq!(r.status(), 302, "consent is remembered for this scope set");
    let r = br
        .get(&authorize_url(&app, &challenge, &[("scope", "openid")]))
        .await;
    assert_eq!(r.status(), 200, "another scope set asks again");
    let _ = secret;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sessions_end_with_the_users_sessions_and_odd_requests_stay_cheap() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    s.user("admin", "admin-password", &["admin"]).await;
    let erin = s.user("erin", "erin-password", &[]).await;
    let admin = s.login("admin", "admin-password").await.access_token;
    let (id, secret) = client(&s, &admin, json!({})).await;
    let secret = secret.unwrap();
    let br = Browser::new(&s);
    let (verifier, challenge) = pkce();
    let code_of = |r: &Response| query(&location(r))["code"].clone();

    // A code issued before a sign-out yields nothing after it.
    let first = code_of(
        &br.authorize(
            &authorize_url(&id, &challenge, &[]),
            "erin",
            "erin-password",
        )
        .await,
    );
    let later = code_of(&br.get(&authorize_url(&id, &challenge, &[])).await);
    let t: Value = exchange(&s, &id, Some(&secret), &first, &verifier, REDIRECT)
        .await
        .json()
        .await
        .unwrap();
    let out = format!(
        "/oauth/logout?id_token_hint={}",
        t["id_token"].as_str().unwrap()
    );
    assert_eq!(br.get(&out).await.status(), 200, "signed-out page");
    oauth_error(
        exchange(&s, &id, Some(&secret), &later, &verifier, REDIRECT).await,
        400,
        "invalid_grant",
    )
    .await;

    // Revoking a user's sessions ends their browser session and unredeemed codes too.
    let pending = code_of(
        &br.authorize(
            &authorize_url(&id, &challenge, &[]),
            "erin",
            "erin-password",
        )
        .await,
    );
    let r = s
        .post_json(
            &format!("/admin/users/{}/revoke-sessions", erin.id),
            &json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = br
        .get(&authorize_url(&id, &challenge, &[("prompt", "none")]))
        .await;
    assert_error_redirect(&r, &s, "login_required");
    oauth_error(
        exchange(&s, &id, Some(&secret), &pending, &verifier, REDIRECT).await,
        400,
        "invalid_grant",
    )
    .await;

    // A hint that no longer verifies asks the user instead of failing; the redirect still
    // needs a URI registered for the client the hint names.
    let fresh = code_of(
        &br.authorize(
            &authorize_url(&id, &challenge, &[]),
            "erin",
            "erin-password",
        )
        .await,
    );
    let t: Value = exchange(&s, &id, Some(&secret), &fresh, &verifier, REDIRECT)
        .await
        .json()
        .await
        .unwrap();
    let forged = crate::harness::tamper(t["id_token"].as_str().unwrap());
    let after =
        url::form_urlencoded::byte_serialize(super::AFTER_LOGOUT.as_bytes()).collect::<String>();
    let r = br
        .get(&format!(
            "/oauth/logout?id_token_hint={forged}&post_logout_redirect_uri={after}&state=s1"
        ))
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let (request, csrf) = (
        super::hidden(&html, "request"),
        super::hidden(&html, "csrf"),
    );
    let r = br
        .post_form("/oauth/logout", &[("request", &request), ("csrf", &csrf)])
        .await;
    assert_eq!(location(&r), format!("{}?state=s1", super::AFTER_LOGOUT));
    let r = br
        .get(&authorize_url(&id, &challenge, &[("prompt", "none")]))
        .await;
    assert_error_redirect(&r, &s, "login_required");

    // POST /oauth/authorize turns into the same GET (so the Lax session cookie comes along).
    let url = authorize_url(&id, &challenge, &[]);
    let body = url.split_once('?').unwrap().1.to_string();
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_follow
        .post(s.url("/oauth/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(super::query(&location(&r)), super::query(&url));

    // Thousands of parameters are refused at once (the reviewer's 60 KB request took 0.4 s of
    // CPU before: duplicates were found by comparing every pair).
    let many: String = (0..3_000).map(|i| format!("p{i}=1&")).collect();
    let started = std::time::Instant::now();
    let r = br
        .get(&format!("/oauth/authorize?{many}client_id={id}"))
        .await;
    assert_eq!(r.status(), 400);
    eprintln!(
        "10,000-parameter authorize refused in {:?}",
        started.elapsed()
    );
}
