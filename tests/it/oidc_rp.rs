//! Relying parties and a browser keymint did not write, through its browser sign-in
//! (SPEC section 7): Authlib (Python) and openid-client (node) run the OpenID Connect code
//! flow through the hosted login page, as a confidential and as a public client; Chromium,
//! driven by playwright-core, signs in on the hosted page and runs a first-party app in
//! cookie mode. Each client is a script (`tests/py/oidc_authlib.py`, `tests/node/*.mjs`) that
//! checks what a careful relying party checks and prints what it saw as JSON; the tests here
//! start keymint, set up users and clients through the admin API, run the script, and assert
//! on its report against what they set up.
//!
//! The node scripts skip (loudly) without node or `tests/node/node_modules`, unless
//! `KEYMINT_TEST_REQUIRE_NODE=1`; the Chromium tests also skip without `/usr/bin/chromium`,
//! unless `KEYMINT_TEST_REQUIRE_BROWSER=1`.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Backend, Server, Site, python, root};
use crate::recipes::{node_missing, node_modules};

/// The most a script may take for the whole flow (they finish in seconds).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);
/// Chromium's start on a loaded machine is slow; still bounded.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);
/// Debian's Chromium.
const CHROMIUM: &str = "/usr/bin/chromium";
/// keymint's defaults (SPEC sections 1 and 7): access and ID tokens 15 min, refresh 30 days.
const ACCESS_TTL: i64 = 15 * 60;
const REFRESH_TTL: i64 = 30 * 24 * 3600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_runs_the_code_flow() {
    let started = now();
    let (_site, s, admin) = start(&[]).await;
    let alice = create_user(&s, &admin, "alice", "Alice Liddell", "alice@example.test").await;
    let redirect_uri = "http://127.0.0.1:9/authlib/cb";
    let post_logout = "http://127.0.0.1:9/authlib/signed-out";
    // With consent: the first authorization shows the consent page, the later ones do not.
    let client = create_client(
        &s,
        &admin,
        "authlib-rp",
        false,
        true,
        redirect_uri,
        post_logout,
    )
    .await;
    let client_id = client["client_id"].as_str().unwrap().to_string();
    let secret = client["client_secret"]
        .as_str()
        .expect("a confidential client has a secret");

    let mut cmd = Command::new(tokio::task::spawn_blocking(python).await.unwrap());
    cmd.arg(root().join("tests/py/oidc_authlib.py")).envs([
        ("OIDC_ISSUER", s.base.as_str()),
        ("OIDC_CLIENT_ID", &client_id),
        ("OIDC_CLIENT_SECRET", secret),
        ("OIDC_REDIRECT_URI", redirect_uri),
        ("OIDC_POST_LOGOUT_REDIRECT_URI", post_logout),
        ("OIDC_USERNAME", "alice"),
        ("OIDC_PASSWORD", "alice-password"),
    ]);
    let out = Script::spawn("oidc_authlib.py", cmd)
        .finish(SCRIPT_TIMEOUT)
        .await;
    let issuer = s.base.as_str();

    let d = &out["discovery"];
    assert_eq!(d["issuer"], issuer, "{d}");
    for (key, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("userinfo_endpoint", "/oauth/userinfo"),
        ("end_session_endpoint", "/oauth/logout"),
    ] {
        assert_eq!(d[key], s.url(path), "discovery {key}: {d}");
    }
    assert_eq!(
        d["code_challenge_methods_supported"],
        json!(["S256"]),
        "{d}"
    );
    assert_eq!(
        d["authorization_response_iss_parameter_supported"], true,
        "{d}"
    );

    // The hosted login: a script-free page, then the consent page once.
    let login = &out["login"];
    let hops = trail(&login["trail"]);
    assert_eq!(
        hops[..3],
        [
            "GET /oauth/authorize 302",
            "GET /login 200",
            "POST /login 303"
        ],
        "{login}"
    );
    assert_eq!(login["consent_shown"], true, "{login}");
    assert_eq!(
        hops[hops.len() - 2..],
        ["POST /oauth/consent 302", "client"],
        "{login}"
    );
    let page = &login["page"];
    assert_eq!(page["scripts"], 0, "the login page has a <script>: {page}");
    assert!(page["csp"].is_string(), "the login page has no CSP: {page}");
    assert_eq!(
        page["login_hint"], "alice",
        "login_hint is passed on: {page}"
    );
    assert_cookie(&login["login_cookie"], "km_login", None, None);
    assert_cookie(&login["sso_cookie"], "km_sso", Some(true), Some("lax"));
    assert!(
        login["sso_cookie"]["value_chars"].as_u64() >= Some(43),
        "km_sso is shorter than 256 bits: {login}"
    );
    assert_eq!(out["callback"]["iss"], issuer, "RFC 9207 iss: {out}");

    let t = &out["tokens"];
    assert!(
        t["token_type"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("bearer"),
        "{t}"
    );
    assert_eq!(scopes(&t["scope"]), ["email", "openid", "profile"], "{t}");
    assert_bounds(&t["expires_in"], 1, ACCESS_TTL, "expires_in");
    assert_bounds(
        &t["refresh_expires_in"],
        1,
        REFRESH_TTL,
        "refresh_expires_in",
    );

    let id = &out["id_token"];
    assert_eq!(id["validated"], true, "{id}");
    assert_id_token(id, issuer, &client_id, &alice["id"], started);
    for (what, refusal) in id["rejects"].as_object().unwrap() {
        assert!(
            refusal.is_string(),
            "Authlib accepted an ID token with a {what}"
        );
    }
    let auth_time = &id["claims"]["auth_time"];

    assert_userinfo(
        &out["userinfo"],
        &alice["id"],
        "alice",
        "Alice Liddell",
        "alice@example.test",
    );

    let r = &out["refresh"];
    assert_eq!(
        (&r["new_access_token"], &r["new_refresh_token"]),
        (&json!(true), &json!(true)),
        "{r}"
    );
    assert_eq!(r["userinfo_sub"], alice["id"], "{r}");
    if !r["id_token"].is_null() {
        // OIDC Core 12.2: the original authentication's time, the same subject.
        assert_eq!(&r["id_token"]["auth_time"], auth_time, "{r}");
        assert_eq!(r["id_token"]["sub"], alice["id"], "{r}");
    }

    // Single sign-on: no login page, no second consent, the same authentication.
    let sso = &out["sso"];
    assert_eq!(
        trail(&sso["trail"]),
        ["GET /oauth/authorize 302", "client"],
        "{sso}"
    );
    assert_eq!(&sso["auth_time"], auth_time, "{sso}");

    // A code used twice: refused, and what its first use issued is revoked.
    let reuse = &out["code_reuse"];
    assert_eq!(
        reuse["second_use"],
        json!({"status": 400, "error": "invalid_grant"}),
        "{reuse}"
    );
    assert_eq!(reuse["userinfo_status_after"], 401, "{reuse}");
    assert_eq!(reuse["refresh_after"]["error"], "invalid_grant", "{reuse}");

    assert_logout(&out["logout"], post_logout);
    let after = &out["after_logout"];
    assert_eq!(
        after["refresh"],
        json!({"status": 400, "error": "invalid_grant"}),
        "{after}"
    );
    assert_eq!(
        after["userinfo_status"], 401,
        "the access token outlived the logout: {after}"
    );
    assert_eq!(after["prompt_none"]["error"], "login_required", "{after}");
    assert_eq!(after["prompt_none"]["iss"], issuer, "{after}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_runs_the_code_flow_as_a_public_client() {
    let Some(_modules) =
        node_modules("oidc_rp::openid_client_runs_the_code_flow_as_a_public_client")
    else {
        return;
    };
    let started = now();
    let (_site, s, admin) = start(&[]).await;
    let bob = create_user(&s, &admin, "bob", "Bob Builder", "bob@example.test").await;
    let redirect_uri = "http://127.0.0.1:9/spa/cb";
    let post_logout = "http://127.0.0.1:9/spa/signed-out";
    let client = create_client(&s, &admin, "spa", true, false, redirect_uri, post_logout).await;
    assert!(
        client["client_secret"].is_null(),
        "a public client has no secret: {client}"
    );
    let client_id = client["client_id"].as_str().unwrap().to_string();

    let mut cmd = Command::new("node");
    cmd.arg(root().join("tests/node/oidc_client.mjs")).envs([
        ("OIDC_ISSUER", s.base.as_str()),
        ("OIDC_CLIENT_ID", &client_id),
        ("OIDC_REDIRECT_URI", redirect_uri),
        ("OIDC_POST_LOGOUT_REDIRECT_URI", post_logout),
        ("OIDC_USERNAME", "bob"),
        ("OIDC_PASSWORD", "bob-password"),
    ]);
    let out = Script::spawn("oidc_client.mjs", cmd)
        .finish(SCRIPT_TIMEOUT)
        .await;
    let issuer = s.base.as_str();

    let d = &out["discovery"];
    assert_eq!(d["issuer"], issuer, "{d}");
    assert!(
        d["token_endpoint_auth_methods_supported"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("none"))),
        "{d}"
    );
    assert_eq!(d["supports_pkce"], true, "{d}");
    let login = &out["login"];
    assert_eq!(
        trail(&login["trail"]),
        [
            "GET /oauth/authorize 302",
            "GET /login 200",
            "POST /login 303",
            "GET /oauth/authorize 302",
            "client",
        ],
        "no consent page for a client without consent: {login}"
    );
    assert_eq!(login["page"]["scripts"], 0, "{login}");
    assert_cookie(&login["sso_cookie"], "km_sso", Some(true), Some("lax"));

    // openid-client refused a forged state and a forged iss before spending the code.
    let cb = &out["callback"];
    assert_eq!(cb["iss"], issuer, "{cb}");
    for (what, refusal) in cb["rejects"].as_object().unwrap() {
        assert!(
            refusal.is_object(),
            "openid-client accepted a response with a {what}"
        );
    }
    let t = &out["tokens"];
    assert_eq!(t["has_refresh_token"], true, "{t}");
    assert_eq!(scopes(&t["scope"]), ["email", "openid", "profile"], "{t}");
    assert_bounds(&t["expires_in"], 1, ACCESS_TTL, "expires_in");
    assert_id_token(&out["id_token"], issuer, &client_id, &bob["id"], started);
    let auth_time = &out["id_token"]["claims"]["auth_time"];
    assert_userinfo(
        &out["userinfo"],
        &bob["id"],
        "bob",
        "Bob Builder",
        "bob@example.test",
    );

    let r = &out["refresh"];
    assert_eq!(
        r["userinfo_sub"], bob["id"],
        "a public client refreshes: {r}"
    );
    let sso = &out["sso"];
    assert_eq!(
        trail(&sso["trail"]),
        ["GET /oauth/authorize 302", "client"],
        "{sso}"
    );
    assert_eq!(&sso["auth_time"], auth_time, "{sso}");

    assert_logout(&out["logout"], post_logout);
    let after = &out["after_logout"];
    assert_eq!(after["refresh"]["error"], "invalid_grant", "{after}");
    assert_eq!(after["refresh"]["status"], 400, "{after}");
    assert_eq!(
        after["userinfo"]["status"], 401,
        "the access token outlived the logout: {after}"
    );
    assert_eq!(after["prompt_none"]["error"], "login_required", "{after}");
    assert_eq!(after["prompt_none"]["iss"], issuer, "{after}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_through_the_hosted_page() {
    let test = "oidc_rp::chromium_signs_in_through_the_hosted_page";
    let Some(_chromium) = browser(test) else {
        return;
    };
    let started = now();
    // The script's own listener is the client's redirect URI: start it first.
    let mut script = Script::spawn("browser.mjs signin", browser_command("signin"));
    let listening = script.line(BROWSER_TIMEOUT).await;
    let listener = listening["listening"]
        .as_str()
        .expect("the listener's origin")
        .to_string();
    let (_site, s, admin) = start(&[]).await;
    let carol = create_user(&s, &admin, "carol", "Carol Danvers", "carol@example.test").await;
    let redirect_uri = format!("{listener}/cb");
    let post_logout = format!("{listener}/signed-out");
    let client = create_client(&s, &admin, "web", false, true, &redirect_uri, &post_logout).await;
    let client_id = client["client_id"].as_str().unwrap().to_string();
    script.send(&json!({
        "issuer": s.base,
        "client_id": client_id,
        "client_secret": client["client_secret"],
        "redirect_uri": redirect_uri,
        "username": "carol",
        "password": "carol-password",
        "wrong_password": "not-carols-password",
        "post_logout_redirect_uri": post_logout,
    }));
    let out = script.finish(BROWSER_TIMEOUT).await;
    let issuer = s.base.as_str();

    let page = &out["login_page"];
    assert_eq!(page["status"], 200, "{page}");
    assert_eq!(page["script_elements"], 0, "{page}");
    assert_eq!(page["script_in_html"], false, "{page}");
    assert_eq!(
        page["form"],
        json!([{"action": "/login", "method": "post"}]),
        "{page}"
    );
    let csp = page["csp"].as_str().expect("the login page sends a CSP");
    assert_strict_scripts(csp);
    // The browser enforces it: an injected inline script is blocked and reported.
    let control = &out["csp_control"];
    assert_eq!(control["injected_script_ran"], false, "{control}");
    assert!(control["events_in_page"].as_u64() > Some(0), "{control}");
    // And nothing on the real pages tripped it or reached a third party.
    assert_eq!(out["csp_violations"], json!([]), "{out}");
    assert_eq!(out["csp_console"], json!([]), "{out}");
    assert_eq!(out["page_errors"], json!([]), "{out}");
    assert_eq!(out["requests"]["third_party"], json!([]), "{out}");

    assert_eq!(out["wrong_password"]["status"], 401, "{out}");
    let cb = &out["callback"];
    assert_eq!(
        (&cb["path"], &cb["state_matches"]),
        (&json!("/cb"), &json!(true)),
        "{cb}"
    );
    assert_eq!(cb["iss"], issuer, "{cb}");
    assert!(cb["error"].is_null(), "{cb}");
    let sso = out["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "km_sso")
        .unwrap_or_else(|| panic!("no km_sso cookie in the browser: {out}"));
    assert_eq!(
        (&sso["httpOnly"], &sso["sameSite"], &sso["secure"]),
        (&json!(true), &json!("Lax"), &json!(false)),
        "{sso}"
    );
    assert_id_token(&out["id_token"], issuer, &client_id, &carol["id"], started);
    // The consent page, in the browser too: script-free, allow and deny.
    let consent = &out["consent"];
    assert_eq!(consent["status"], 200, "{out}");
    assert_eq!(consent["script_elements"], 0, "{consent}");
    assert_eq!(consent["buttons"], json!(["Allow", "Deny"]), "{consent}");
    // The second authorization in the same browser: no login page, no consent page.
    let again = &out["sso"];
    assert_eq!(
        (&again["state_matches"], &again["has_code"]),
        (&json!(true), &json!(true)),
        "{again}"
    );
    assert_eq!(
        again["documents"],
        json!(["GET /oauth/authorize 302", "GET /cb 200"]),
        "{again}"
    );
    // RP-initiated logout through the browser ends the session there too.
    let logout = &out["logout"];
    assert_eq!(
        (&logout["landed"], &logout["state_matches"]),
        (&json!(true), &json!(true)),
        "{logout}"
    );
    assert_eq!(
        out["after_logout"],
        json!({"path": "/login", "login_form": true}),
        "the next authorization asks to sign in again: {out}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_cookie_mode_keeps_tokens_from_javascript() {
    let test = "oidc_rp::chromium_cookie_mode_keeps_tokens_from_javascript";
    let Some(_chromium) = browser(test) else {
        return;
    };
    // The app's origin is the proxy's, which the browser names in Origin: keymint allows it.
    let mut script = Script::spawn("browser.mjs cookie", browser_command("cookie"));
    let listening = script.line(BROWSER_TIMEOUT).await;
    let origin = listening["listening"]
        .as_str()
        .expect("the proxy's origin")
        .to_string();
    let (_site, s, admin) = start(&[("KEYMINT_CORS_ORIGINS", &origin)]).await;
    let dave = create_user(&s, &admin, "dave", "Dave Bowman", "dave@example.test").await;
    script.send(&json!({"upstream": s.base, "username": "dave", "password": "dave-password"}));
    let out = script.finish(BROWSER_TIMEOUT).await;

    let report = &out["page"];
    let steps = report["steps"].as_array().unwrap();
    let step = |label: &str| {
        steps
            .iter()
            .find(|s| s["label"] == label)
            .unwrap_or_else(|| panic!("the page did no {label:?}: {report}"))
    };
    let body_keys = json!([
        "csrf_token",
        "expires_in",
        "refresh_expires_in",
        "token_type"
    ]);
    for label in ["login", "refresh"] {
        let st = step(label);
        assert_eq!(
            (&st["status"], &st["keys"]),
            (&json!(200), &body_keys),
            "{st}"
        );
    }
    for st in steps {
        assert_eq!(st["tokens_in_body"], false, "a body carried a token: {st}");
        assert!(
            st["document_cookie"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n == "km_csrf"),
            "script saw a cookie other than km_csrf: {st}"
        );
    }
    let facts = &report["facts"];
    assert_eq!(
        facts["cookies_seen_by_script"],
        json!(["km_csrf"]),
        "{facts}"
    );
    assert_eq!(facts["login_body_csrf_equals_cookie"], true, "{facts}");
    assert_eq!(facts["refresh_body_csrf_equals_cookie"], true, "{facts}");
    for me in ["me", "me_after_refresh"] {
        assert_eq!(facts[me]["id"], dave["id"], "{facts}");
        assert_eq!(facts[me]["username"], "dave", "{facts}");
    }
    let lb = &facts["login_body"];
    assert_eq!(lb["token_type"], "Bearer", "{lb}");
    assert_bounds(&lb["expires_in"], 1, ACCESS_TTL, "expires_in");
    assert_bounds(
        &lb["refresh_expires_in"],
        1,
        REFRESH_TTL,
        "refresh_expires_in",
    );

    // Without the CSRF header, with a wrong one, or with a planted cookie and header pair.
    assert_eq!(facts["planted_cookie_visible"], true, "{facts}");
    for label in [
        "refresh without X-CSRF-Token",
        "refresh with a wrong X-CSRF-Token",
        "refresh with a planted km_csrf pair",
        "logout without X-CSRF-Token",
    ] {
        let st = step(label);
        assert_eq!(
            (&st["status"], &st["error"]),
            (&json!(403), &json!("CSRF_FAILED")),
            "{st}"
        );
    }
    for label in ["me", "me after refresh"] {
        assert_eq!(step(label)["status"], 200, "{}", step(label));
    }
    let logout = step("logout")["status"].as_u64().unwrap();
    assert!((200..300).contains(&logout), "{}", step("logout"));
    assert_eq!(
        step("me after logout")["status"],
        401,
        "{}",
        step("me after logout")
    );
    assert_eq!(facts["cookies_after_logout"], json!([]), "{facts}");
    assert_eq!(out["browser_cookies_after"], json!([]), "{out}");

    // What keymint set, as the proxy saw it.
    let proxied = out["proxied"].as_array().unwrap();
    let exchange = |method: &str, path: &str, status: u64| {
        proxied
            .iter()
            .find(|e| e["method"] == method && e["path"] == path && e["status"] == status)
            .unwrap_or_else(|| panic!("no {method} {path} {status} through the proxy: {out}"))
    };
    let login = set_cookies(exchange("POST", "/auth/login?mode=cookie", 200));
    let refresh = set_cookies(exchange("POST", "/auth/refresh?mode=cookie", 200));
    for cookies in [&login, &refresh] {
        let access = &cookies["km_access"];
        assert_eq!(access.attr("path"), Some("/"), "{access:?}");
        assert!(
            access.flag("httponly") && !access.flag("secure"),
            "{access:?}"
        );
        assert_eq!(
            access.attr("samesite").map(str::to_lowercase).as_deref(),
            Some("strict")
        );
        assert_eq!(
            access.attr("max-age"),
            Some(ACCESS_TTL.to_string().as_str()),
            "{access:?}"
        );
        let refresh = &cookies["km_refresh"];
        assert_eq!(refresh.attr("path"), Some("/auth"), "{refresh:?}");
        assert!(
            refresh.flag("httponly") && !refresh.flag("secure"),
            "{refresh:?}"
        );
        assert_eq!(
            refresh.attr("samesite").map(str::to_lowercase).as_deref(),
            Some("strict")
        );
        assert_eq!(
            refresh.attr("max-age"),
            Some(REFRESH_TTL.to_string().as_str()),
            "{refresh:?}"
        );
        let csrf = &cookies["km_csrf"];
        assert_eq!(csrf.attr("path"), Some("/"), "{csrf:?}");
        assert!(!csrf.flag("httponly") && !csrf.flag("secure"), "{csrf:?}");
        assert_eq!(
            csrf.attr("samesite").map(str::to_lowercase).as_deref(),
            Some("strict")
        );
    }
    // Refresh rotates both tokens.
    assert_ne!(login["km_access"].value, refresh["km_access"].value);
    assert_ne!(login["km_refresh"].value, refresh["km_refresh"].value);
    let cleared = set_cookies(exchange("POST", "/auth/logout?mode=cookie", logout));
    for name in ["km_access", "km_refresh", "km_csrf"] {
        let c = cleared
            .get(name)
            .unwrap_or_else(|| panic!("logout does not clear {name}: {cleared:?}"));
        assert_eq!(c.attr("max-age"), Some("0"), "{c:?}");
    }
    for e in proxied.iter().filter(|e| e["method"] == "POST") {
        assert_eq!(e["origin"], origin.as_str(), "{e}");
    }
    assert_eq!(out["csp_violations"], json!([]), "{out}");
    s.stop().await;
}

// ---- keymint, users and clients

/// keymint with its issuer at its own address, an admin, and the admin's bearer.
async fn start(extra: &[(&str, &str)]) -> (Site, Server, String) {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start_as_issuer(&site, extra).await;
    s.user("admin", "admin-password", &["admin"]).await;
    let admin = s.login("admin", "admin-password").await.access_token;
    (site, s, admin)
}

/// A user with a name and an email through the admin API; the password is `{username}-password`.
async fn create_user(s: &Server, admin: &str, username: &str, name: &str, email: &str) -> Value {
    let body = json!({
        "username": username,
        "password": format!("{username}-password"),
        "roles": [],
        "name": name,
        "email": email,
    });
    let r = s.post_json("/admin/users", &body, Some(admin)).await;
    let status = r.status();
    let user: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "POST /admin/users: {user}");
    assert!(user["id"].is_string(), "{user}");
    user
}

/// An OpenID Connect client through the admin API.
async fn create_client(
    s: &Server,
    admin: &str,
    name: &str,
    public: bool,
    consent: bool,
    redirect_uri: &str,
    post_logout_redirect_uri: &str,
) -> Value {
    let body = json!({
        "name": name,
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["profile", "email"],
        "redirect_uris": [redirect_uri],
        "post_logout_redirect_uris": [post_logout_redirect_uri],
        "public": public,
        "consent": consent,
    });
    let r = s.post_json("/admin/clients", &body, Some(admin)).await;
    let status = r.status();
    let client: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "POST /admin/clients: {client}");
    assert!(client["client_id"].is_string(), "{client}");
    client
}

// ---- assertions on the scripts' reports

/// The ID token's claims: issuer, audience, subject, times, and the claims section 7 lists.
fn assert_id_token(id: &Value, issuer: &str, client_id: &str, sub: &Value, started: i64) {
    let (h, c) = (&id["header"], &id["claims"]);
    assert_eq!(
        (&h["alg"], &h["typ"]),
        (&json!("RS256"), &json!("JWT")),
        "{h}"
    );
    assert!(h["kid"].is_string(), "{h}");
    assert_eq!(c["iss"], issuer, "{c}");
    assert_eq!(&c["sub"], sub, "the ID token's sub is the user's id: {c}");
    assert!(
        c["aud"] == client_id || c["aud"] == json!([client_id]),
        "aud is the client: {c}"
    );
    assert_eq!(c["azp"], client_id, "{c}");
    for claim in ["nonce", "at_hash", "sid"] {
        assert!(c[claim].is_string(), "no {claim}: {c}");
    }
    let (iat, exp, auth_time) = (int(&c["iat"]), int(&c["exp"]), int(&c["auth_time"]));
    let end = now();
    assert!(
        started - 5 <= auth_time && auth_time <= iat && iat <= end + 5,
        "times: {c}"
    );
    assert!(
        0 < exp - iat && exp - iat <= ACCESS_TTL,
        "ID token lifetime: {c}"
    );
}

fn assert_userinfo(u: &Value, sub: &Value, username: &str, name: &str, email: &str) {
    assert_eq!(&u["sub"], sub, "{u}");
    assert_eq!(u["preferred_username"], username, "{u}");
    assert_eq!(u["name"], name, "{u}");
    assert_eq!(u["email"], email, "{u}");
    assert!(u["email_verified"].is_boolean(), "{u}");
}

fn assert_logout(l: &Value, post_logout: &str) {
    let status = l["status"].as_u64().unwrap();
    assert!(status == 302 || status == 303, "{l}");
    let location = l["location"].as_str().unwrap();
    assert!(location.starts_with(&format!("{post_logout}?")), "{l}");
    assert_eq!(l["state_echoed"], true, "{l}");
}

/// A cookie's attributes as the Python script parsed them (lowercase names).
fn assert_cookie(attrs: &Value, name: &str, http_only: Option<bool>, same_site: Option<&str>) {
    if let Some(want) = http_only {
        assert_eq!(attrs["httponly"] == true, want, "{name}: {attrs}");
    }
    assert!(
        attrs["secure"].is_null(),
        "{name} is Secure with an http issuer: {attrs}"
    );
    if let Some(want) = same_site {
        let got = attrs["samesite"].as_str().map(str::to_lowercase);
        assert_eq!(got.as_deref(), Some(want), "{name}: {attrs}");
    }
}

/// Scripts may not run inline or from anywhere but keymint's own origin on the login page.
fn assert_strict_scripts(csp: &str) {
    let directive = |name: &str| {
        csp.split(';')
            .map(str::trim)
            .find(|d| d.split_whitespace().next() == Some(name))
            .map(|d| d.split_whitespace().skip(1).collect::<Vec<_>>())
    };
    let scripts = directive("script-src")
        .or_else(|| directive("default-src"))
        .unwrap_or_else(|| panic!("neither script-src nor default-src in {csp:?}"));
    for bad in [
        "'unsafe-inline'",
        "'unsafe-eval'",
        "*",
        "http:",
        "https:",
        "data:",
    ] {
        assert!(
            !scripts.contains(&bad),
            "the login page's CSP allows {bad} scripts: {csp:?}"
        );
    }
}

fn assert_bounds(v: &Value, low: i64, high: i64, what: &str) {
    let n = int(v);
    assert!(
        low <= n && n <= high,
        "{what} = {n}, not in [{low}, {high}]"
    );
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// `[{method, path, status} | {redirect}]` as `"GET /login 200"` and `"client"`.
fn trail(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a trail: {v}"))
        .iter()
        .map(|h| match h["redirect"].as_str() {
            Some(to) => to.to_string(),
            None => format!(
                "{} {} {}",
                h["method"].as_str().unwrap(),
                h["path"].as_str().unwrap(),
                h["status"]
            ),
        })
        .collect()
}

fn scopes(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = v
        .as_str()
        .unwrap_or_else(|| panic!("no scope: {v}"))
        .split_whitespace()
        .map(String::from)
        .collect();
    s.sort();
    s
}

/// A Set-Cookie line as the proxy logged it (value replaced by a fingerprint).
#[derive(Debug)]
struct SetCookie {
    value: String,
    attrs: Vec<(String, Option<String>)>,
}

impl SetCookie {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
    fn flag(&self, name: &str) -> bool {
        self.attrs.iter().any(|(k, _)| k == name)
    }
}

fn set_cookies(exchange: &Value) -> std::collections::HashMap<String, SetCookie> {
    exchange["set_cookie"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            let mut parts = line.as_str().unwrap().split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let attrs = parts
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.to_lowercase(), Some(v.to_string())),
                    None => (p.to_lowercase(), None),
                })
                .collect();
            let value = value.to_string();
            (name.to_string(), SetCookie { value, attrs })
        })
        .collect()
}

fn now() -> i64 {
    keymint::clock::system_now()
}

// ---- running the scripts

/// A client script as a child process: JSON lines on stdout (read with a deadline), its
/// stderr kept for the failure message, killed when dropped.
struct Script {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Script {
    fn spawn(name: &str, mut cmd: Command) -> Script {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {cmd:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let mut stdout = std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok);
            stdout.try_for_each(|line| tx.send(line))
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut pipe, kept) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut kept = kept.lock().unwrap();
                kept.push_str(&String::from_utf8_lossy(&buf[..n]));
                // The last 16 KiB are what explains a failure.
                if kept.len() > 32 * 1024 {
                    let cut = kept.len() - 16 * 1024;
                    let cut = (cut..kept.len())
                        .find(|i| kept.is_char_boundary(*i))
                        .unwrap();
                    kept.drain(..cut);
                }
            }
        });
        Script {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The next line on stdout, as JSON.
    async fn line(&mut self, within: Duration) -> Value {
        let line = match tokio::time::timeout(within, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!(
                "{} exited without a report ({:?}); stderr:\n{}",
                self.name,
                self.child.try_wait(),
                self.stderr()
            ),
            Err(_) => panic!(
                "{} printed nothing within {within:?}; stderr:\n{}",
                self.name,
                self.stderr()
            ),
        };
        serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "{} printed {line:?} ({e}); stderr:\n{}",
                self.name,
                self.stderr()
            )
        })
    }

    fn send(&mut self, v: &Value) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{v}")
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: writing its configuration: {e}", self.name));
    }

    /// The script's report: its last line, `"ok": true`, and a clean exit, all within `within`.
    async fn finish(mut self, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        let report = self.line(within).await;
        // Then end of output, which is the script's exit.
        let rest = deadline.saturating_duration_since(tokio::time::Instant::now());
        let extra = tokio::time::timeout(rest, self.lines.recv()).await;
        assert!(
            matches!(extra, Ok(None)),
            "{} did not exit after its report ({extra:?}); stderr:\n{}",
            self.name,
            self.stderr()
        );
        let status = self.child.wait().unwrap();
        assert!(
            report["ok"] == true && status.success(),
            "{} failed ({status}): {}\nreport: {report}\nstderr:\n{}",
            self.name,
            report["error"],
            self.stderr()
        );
        report
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn browser_command(mode: &str) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(root().join("tests/node/browser.mjs"))
        .arg(mode)
        .env("CHROMIUM_PATH", CHROMIUM);
    cmd
}

/// Chromium and the node packages that drive it, or `None` (the test skipped, loudly); with
/// `KEYMINT_TEST_REQUIRE_BROWSER=1` a missing browser (or node) fails instead.
fn browser(test: &str) -> Option<PathBuf> {
    let required = std::env::var("KEYMINT_TEST_REQUIRE_BROWSER").as_deref() == Ok("1");
    let path = PathBuf::from(CHROMIUM);
    if !path.exists() {
        let why = format!("{CHROMIUM} is not installed (apt-get install chromium)");
        assert!(
            !required,
            "{test}: KEYMINT_TEST_REQUIRE_BROWSER=1 but {why}"
        );
        eprintln!("SKIPPED {test}: {why}");
        return None;
    }
    let modules = root().join("tests/node/node_modules");
    if let Some(why) = node_missing(&modules) {
        assert!(
            !required,
            "{test}: KEYMINT_TEST_REQUIRE_BROWSER=1 but {why}"
        );
        return node_modules(test).map(|_| path);
    }
    Some(path)
}
