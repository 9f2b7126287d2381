//! The authorization request (OpenID Connect Core 3.1.2, RFC 6749 4.1, RFC 7636, RFC 9207)
//! and what to do with it. The rules, in the order they apply:
//!
//! 1. an unknown client, or a redirect URI not registered for it exactly, is refused on a
//!    page: the browser is never sent to an unverified address;
//! 2. every other error goes back to the redirect URI with `error`, `error_description`,
//!    `state` and `iss`;
//! 3. no SSO session, `prompt=login` or an authentication older than `max_age` sends the
//!    browser to `/login` and back (`prompt=none`: `login_required` instead);
//! 4. a client registered with `consent` asks once per user, client and scope set;
//! 5. a code is issued, bound to everything it must be redeemed with.

use sea_orm::EntityTrait;

use super::code::{self, CodeBinding};
pub use super::params::{Params, with_query};
use super::sso::SsoSession;
use super::{IMPLICIT_SCOPES, valid_pkce_value};
use crate::clients::Client;
use crate::db::entities::consents;
use crate::error::Result;
use crate::state::App;

/// Internal parameter carried through `/login`: the authentication must be at least this
/// recent (`prompt=login` and `max_age` become it, so the return trip cannot loop).
pub const LOGIN_AFTER: &str = "km_login_after";

/// What the user decided on the consent page, when this request comes from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consent {
    NotAsked,
    Allow,
    Deny,
}

/// What the door does next. Lives for one response; boxing would only add allocations.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// Answer a 400 page; never redirect (unknown client, unregistered redirect URI).
    Refuse(String),
    /// Send the browser to this address (the client's redirect URI with a code or an error).
    Redirect(String),
    /// Send the browser to `/login`, which returns it to `return_to`.
    Login {
        return_to: String,
        login_hint: Option<String>,
    },
    /// Show the consent page for `scopes`; its form resubmits `request`.
    Consent {
        client: Client,
        scopes: Vec<String>,
        request: String,
        sso_id: String,
    },
}

/// The checked request, before the session decides.
struct Checked<'a> {
    client: Client,
    redirect_uri: &'a str,
    state: Option<&'a str>,
    scopes: Vec<String>,
    challenge: &'a str,
    nonce: Option<&'a str>,
    prompt_none: bool,
    prompt_login: bool,
    max_age: Option<i64>,
    login_after: Option<i64>,
}

/// Decide an authorization request. `sso` is the browser's live session, if any.
pub async fn authorize(
    app: &App,
    p: &Params,
    sso: Option<SsoSession>,
    consent: Consent,
    now: i64,
) -> Result<Outcome> {
    let checked = match check(app, p).await? {
        Ok(c) => c,
        Err(outcome) => return Ok(outcome),
    };
    let c = checked;
    let fail = |error: &str, description: &str| {
        Ok(Outcome::Redirect(error_redirect(
            app,
            c.redirect_uri,
            c.state,
            error,
            description,
        )))
    };
    // A session whose user is gone or disabled is no session.
    let user = match &sso {
        Some(s) => app.users.by_id(&s.user_id).await?.filter(|u| !u.disabled),
        None => None,
    };
    let fresh_enough = |s: &SsoSession| {
        !c.prompt_login
            && c.max_age.is_none_or(|m| now - s.auth_time <= m)
            && c.login_after.is_none_or(|t| s.auth_time >= t)
    };
    let (sso, user) = match (sso, user) {
        (Some(s), Some(u)) if fresh_enough(&s) => (s, u),
        _ if c.prompt_none => {
            return fail("login_required", "the user is not signed in");
        }
        _ => {
            // Back from /login with an authentication at least this recent.
            let return_to = format!(
                "/oauth/authorize?{}",
                p.encode(
                    &["prompt", "max_age", LOGIN_AFTER],
                    &[(LOGIN_AFTER, now.to_string())]
                )
            );
            return Ok(Outcome::Login {
                return_to,
                login_hint: p.get("login_hint").map(str::to_string),
            });
        }
    };
    match consent {
        Consent::Deny => return fail("access_denied", "the user declined"),
        Consent::Allow if c.client.consent => {
            remember_consent(app, &user.id, &c.client, &c.scopes, now).await?
        }
        Consent::NotAsked
            if c.client.consent && !consented(app, &user.id, &c.client, &c.scopes).await? =>
        {
            if c.prompt_none {
                return fail("consent_required", "the user has not consented");
            }
            return Ok(Outcome::Consent {
                client: c.client.clone(),
                scopes: c.scopes.clone(),
                request: p.encode(&[], &[]),
                sso_id: sso.id,
            });
        }
        _ => {}
    }
    let binding = CodeBinding {
        client_id: c.client.client_id.clone(),
        redirect_uri: c.redirect_uri.to_string(),
        challenge: c.challenge.to_string(),
        nonce: c.nonce.map(str::to_string),
        scope: c.scopes.join(" "),
        user_id: user.id,
        auth_time: sso.auth_time,
        sso_id: sso.id,
    };
    let code = code::issue(app, binding, now).await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = c.state {
        params.push(("state", s));
    }
    params.push(("iss", app.config.issuer.as_str()));
    Ok(Outcome::Redirect(with_query(c.redirect_uri, &params)))
}

fn error_redirect(
    app: &App,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> String {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", app.config.issuer.as_str()));
    with_query(redirect_uri, &params)
}

/// Longest value accepted for `state`, `nonce` and `login_hint`.
const MAX_PARAM: usize = 2048;

/// Validate everything but the session: `Err(outcome)` is the refusal or error redirect.
async fn check<'a>(app: &App, p: &'a Params) -> Result<std::result::Result<Checked<'a>, Outcome>> {
    let refuse = |m: &str| Ok(Err(Outcome::Refuse(m.to_string())));
    if p.too_many() {
        return refuse("the request has too many parameters");
    }
    let repeated = p.repeated();
    if matches!(repeated, Some("client_id" | "redirect_uri")) {
        return refuse("the request repeats client_id or redirect_uri");
    }
    let Some(client_id) = p.get("client_id") else {
        return refuse("the request has no client_id");
    };
    let Some(client) = app.clients.get(client_id).await? else {
        return refuse("unknown client");
    };
    let Some(redirect_uri) = p
        .get("redirect_uri")
        .filter(|r| client.redirect_uris.iter().any(|u| u == r))
    else {
        return refuse("the redirect_uri is not registered for this client");
    };
    let state = p.get("state");
    let fail = |error: &str, description: String| {
        Ok(Err(Outcome::Redirect(error_redirect(
            app,
            redirect_uri,
            state.filter(|s| s.len() <= MAX_PARAM),
            error,
            &description,
        ))))
    };
    if let Some(name) = repeated {
        return fail("invalid_request", format!("parameter {name:?} is repeated"));
    }
    if p.get("request").is_some() {
        return fail(
            "request_not_supported",
            "request objects are not supported".into(),
        );
    }
    if p.get("request_uri").is_some() {
        return fail(
            "request_uri_not_supported",
            "request_uri is not supported".into(),
        );
    }
    match p.get("response_type") {
        None => return fail("invalid_request", "response_type is required".into()),
        Some("code") => {}
        Some(other) => {
            return fail(
                "unsupported_response_type",
                format!("response_type {other:?} is not supported; use code"),
            );
        }
    }
    if p.get("response_mode").is_some_and(|m| m != "query") {
        return fail(
            "invalid_request",
            "only response_mode=query is supported".into(),
        );
    }
    if !client.allows("authorization_code") {
        return fail(
            "unauthorized_client",
            "this client may not use the authorization_code grant".into(),
        );
    }
    for name in ["state", "nonce", "login_hint"] {
        if p.get(name).is_some_and(|v| v.len() > MAX_PARAM) {
            return fail(
                "invalid_request",
                format!("{name} is over {MAX_PARAM} bytes"),
            );
        }
    }
    let Some(scope) = p.get("scope") else {
        return fail(
            "invalid_scope",
            "scope is required and must contain openid".into(),
        );
    };
    let mut scopes: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        let allowed = IMPLICIT_SCOPES.contains(&s) || client.scopes.iter().any(|c| c == s);
        if !allowed {
            return fail(
                "invalid_scope",
                format!("scope {s:?} is not allowed for this client"),
            );
        }
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    if !scopes.iter().any(|s| s == "openid") {
        return fail("invalid_scope", "scope must contain openid".into());
    }
    let Some(challenge) = p.get("code_challenge") else {
        return fail(
            "invalid_request",
            "code_challenge is required (PKCE with S256)".into(),
        );
    };
    if p.get("code_challenge_method") != Some("S256") {
        return fail(
            "invalid_request",
            "code_challenge_method must be S256 (plain is not accepted)".into(),
        );
    }
    if !valid_pkce_value(challenge) {
        return fail("invalid_request", "code_challenge is malformed".into());
    }
    let prompts: Vec<&str> = p
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = prompts.iter().find(|v| !["none", "login"].contains(v)) {
        return fail(
            "invalid_request",
            format!("prompt {bad:?} is not supported"),
        );
    }
    let prompt_none = prompts.contains(&"none");
    if prompt_none && prompts.len() > 1 {
        return fail("invalid_request", "prompt=none cannot be combined".into());
    }
    let max_age = match p.get("max_age").map(str::parse::<u32>) {
        None => None,
        Some(Ok(v)) => Some(i64::from(v)),
        Some(Err(_)) => {
            return fail(
                "invalid_request",
                "max_age must be a non-negative integer".into(),
            );
        }
    };
    Ok(Ok(Checked {
        client,
        redirect_uri,
        state,
        scopes,
        challenge,
        nonce: p.get("nonce"),
        prompt_none,
        prompt_login: prompts.contains(&"login"),
        max_age,
        login_after: p.get(LOGIN_AFTER).and_then(|v| v.parse().ok()),
    }))
}

/// The stored form of a scope set: sorted, space-joined.
fn scope_key(scopes: &[String]) -> String {
    let mut v: Vec<&str> = scopes.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.join(" ")
}

async fn consented(app: &App, user: &str, client: &Client, scopes: &[String]) -> Result<bool> {
    let key = (
        user.to_string(),
        client.client_id.clone(),
        scope_key(scopes),
    );
    Ok(consents::Entity::find_by_id(key)
        .one(&app.db)
        .await?
        .is_some())
}

async fn remember_consent(
    app: &App,
    user: &str,
    client: &Client,
    scopes: &[String],
    now: i64,
) -> Result<()> {
    if consented(app, user, client, scopes).await? {
        return Ok(());
    }
    let row = consents::Model {
        user_id: user.to_string(),
        client_id: client.client_id.clone(),
        scope: scope_key(scopes),
        created_at: now,
    };
    match consents::Entity::insert(consents::ActiveModel::from(row))
        .exec_without_returning(&app.db)
        .await
    {
        Ok(_) => Ok(()),
        // Two tabs consenting at once: the other one stored it.
        Err(e) if crate::db::is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
