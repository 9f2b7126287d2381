//! OpenID Connect doors: `/oauth/authorize` (and the consent form's `/oauth/consent`),
//! `/oauth/userinfo` and `/oauth/logout`. Each parses, calls `oidc::*`, and renders the
//! outcome as a redirect, a page, or JSON.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::{Error, ErrorCode};
use crate::http::browser::current_session;
use crate::http::cookies::{Cookie, form_origin_allowed};
use crate::http::error::{ErrorBody, public_message, status};
use crate::http::extract::authenticate_request;
use crate::http::pages;
use crate::oidc::authorize::{self, Consent, Outcome, Params};
use crate::oidc::logout::{self, LogoutRequest};
use crate::oidc::{UserInfo, userinfo as user_info};
use crate::state::AppState;

/// 302 to `location`, never cached.
fn found(location: &str) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn unavailable(e: &Error) -> Response {
    pages::error(status(e.code), "Sign-in is unavailable", &public_message(e))
}

/// A form keymint rendered for the browser's SSO session (consent, logout confirmation): its
/// `csrf` must be that session's token, and its `Origin` allowed; otherwise a 403 page.
async fn session_form(
    s: &AppState,
    headers: &HeaderMap,
    form: &Params,
    title: &str,
) -> Result<(), Response> {
    let session = current_session(s, headers)
        .await
        .map_err(|e| unavailable(&e))?;
    let csrf = form.get("csrf").unwrap_or("");
    let ok = session
        .as_ref()
        .is_some_and(|b| s.browser.check("sso", &b.id, csrf))
        && form_origin_allowed(s, headers);
    if !ok {
        let m = "This page has expired. Please start again from the application.";
        return Err(pages::error(StatusCode::FORBIDDEN, title, m));
    }
    Ok(())
}

/// Run an authorization request and render its outcome.
async fn run(s: &AppState, headers: &HeaderMap, p: &Params, consent: Consent) -> Response {
    let sso = match current_session(s, headers).await {
        Ok(v) => v,
        Err(e) => return unavailable(&e),
    };
    match authorize::authorize(s, p, sso, consent, s.now()).await {
        Ok(Outcome::Refuse(m)) => pages::error(StatusCode::BAD_REQUEST, "Cannot sign in", &m),
        Ok(Outcome::Redirect(url)) => found(&url),
        Ok(Outcome::Login {
            return_to,
            login_hint,
        }) => {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("return_to", &return_to);
            if let Some(h) = login_hint {
                q.append_pair("login_hint", &h);
            }
            found(&format!("/login?{}", q.finish()))
        }
        Ok(Outcome::Consent {
            client,
            scopes,
            request,
            sso_id,
        }) => pages::consent(
            &client.name,
            &scopes,
            &request,
            &s.browser.tag("sso", &sso_id),
        ),
        Err(e) => unavailable(&e),
    }
}

/// OpenID Connect authorization endpoint (code flow, PKCE S256 required).
#[utoipa::path(get, path = "/oauth/authorize", tag = "openid connect",
    params(
        ("response_type" = String, Query, description = "`code`"),
        ("client_id" = String, Query),
        ("redirect_uri" = String, Query, description = "Exactly one of the client's registered URIs"),
        ("scope" = String, Query, description = "Must contain `openid`"),
        ("state" = Option<String>, Query),
        ("nonce" = Option<String>, Query),
        ("code_challenge" = String, Query, description = "BASE64URL(SHA256(code_verifier))"),
        ("code_challenge_method" = String, Query, description = "`S256` (`plain` is refused)"),
        ("prompt" = Option<String>, Query, description = "`none` or `login`"),
        ("max_age" = Option<u32>, Query),
        ("login_hint" = Option<String>, Query),
    ),
    responses(
        (status = 200, description = "The consent page (HTML)", content_type = "text/html", body = String),
        (status = 302, description = "To the redirect URI with `code`, `state`, `iss`, or with `error`, `error_description`, `state`, `iss`; or to `/login`",
            headers(("Location" = String))),
        (status = 400, description = "Unknown client or unregistered redirect URI (HTML; never redirects)", content_type = "text/html", body = String),
        (status = 503, description = "The database is unreachable (HTML)", content_type = "text/html", body = String),
    ))]
pub async fn authorize_get(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.unwrap_or_default().as_bytes());
    run(&s, &headers, &p, Consent::NotAsked).await
}

/// The authorization endpoint with form parameters (OpenID Connect Core 3.1.2.1): answered
/// with a 303 to the same request as a GET, because a cross-site POST does not carry the
/// SameSite=Lax `km_sso` cookie and the user would be asked to sign in again for nothing.
#[utoipa::path(post, path = "/oauth/authorize", tag = "openid connect",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "The parameters of GET /oauth/authorize"),
    responses(
        (status = 303, description = "To GET /oauth/authorize with the same parameters", headers(("Location" = String))),
        (status = 400, description = "No client_id, or more than 64 parameters (HTML)", content_type = "text/html", body = String),
    ))]
pub async fn authorize_post(body: Bytes) -> Response {
    let p = Params::parse(&body);
    let refusal = match () {
        _ if p.too_many() => Some("the request has too many parameters"),
        _ if p.get("client_id").is_none() => Some("the request has no client_id"),
        _ => None,
    };
    if let Some(m) = refusal {
        return pages::error(StatusCode::BAD_REQUEST, "Cannot sign in", m);
    }
    let mut resp = found(&format!("/oauth/authorize?{}", p.encode(&[], &[])));
    *resp.status_mut() = StatusCode::SEE_OTHER;
    resp
}

/// The consent form's answer: `request` (the authorization request), `csrf`, `decision`.
#[utoipa::path(post, path = "/oauth/consent", tag = "openid connect",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`request`, `csrf`, `decision` (`allow` or `deny`)"),
    responses(
        (status = 302, description = "To the redirect URI with a code, or `error=access_denied`", headers(("Location" = String))),
        (status = 400, description = "Unknown client or unregistered redirect URI (HTML)", content_type = "text/html", body = String),
        (status = 403, description = "The form's CSRF token does not match the browser's session (HTML)", content_type = "text/html", body = String),
        (status = 503, description = "The database is unreachable (HTML)", content_type = "text/html", body = String),
    ))]
pub async fn consent(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    if let Err(resp) = session_form(&s, &headers, &form, "Cannot continue").await {
        return resp;
    }
    let decision = match form.get("decision") {
        Some("allow") => Consent::Allow,
        _ => Consent::Deny,
    };
    let request = Params::parse(form.get("request").unwrap_or("").as_bytes());
    run(&s, &headers, &request, decision).await
}

/// OpenID Connect userinfo: the claims the access token's scope allows.
#[utoipa::path(get, path = "/oauth/userinfo", tag = "openid connect", security(("bearer" = [])),
    responses(
        (status = 200, description = "`sub`; with `profile` `preferred_username` and `name`; with `email` `email` and `email_verified`", body = UserInfoDoc),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN (`WWW-Authenticate: Bearer error=\"insufficient_scope\"`): the token's scope lacks `openid`", body = ErrorBody),
    ))]
pub async fn userinfo_get(State(s): State<AppState>, headers: HeaderMap) -> Response {
    userinfo(&s, &Method::GET, &headers).await
}

/// Userinfo by POST (OpenID Connect Core 5.3.1).
#[utoipa::path(post, path = "/oauth/userinfo", tag = "openid connect", security(("bearer" = [])),
    responses(
        (status = 200, description = "As for GET", body = UserInfoDoc),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN (insufficient_scope) or CSRF_FAILED (cookie without the CSRF token)", body = ErrorBody),
    ))]
pub async fn userinfo_post(State(s): State<AppState>, headers: HeaderMap) -> Response {
    userinfo(&s, &Method::POST, &headers).await
}

async fn userinfo(s: &AppState, method: &Method, headers: &HeaderMap) -> Response {
    let now = s.now();
    let verified =
        authenticate_request(s, method, headers, |t| s.authenticate_any_audience(t, now));
    let result = match verified {
        Ok(claims) => user_info(s, &claims).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(info) => crate::http::auth::no_store(Json(info).into_response()),
        Err(e) if e.code == ErrorCode::Forbidden => {
            let mut resp = e.into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"insufficient_scope\", scope=\"openid\""),
            );
            resp
        }
        Err(e) => e.into_response(),
    }
}

/// The userinfo response (schema only).
#[derive(utoipa::ToSchema)]
#[schema(as = UserInfo, example = json!({"sub": "6f1c2d4e-8a7b-4c3d-9e2f-1a2b3c4d5e6f", "preferred_username": "alice", "name": "Alice Example", "email": "alice@example.com", "email_verified": false}))]
#[allow(dead_code)] // documentation only: the wire form is `oidc::UserInfo`
pub struct UserInfoDoc {
    pub sub: String,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
}

const _: fn(UserInfo) = |_| {};

/// RP-Initiated Logout: end the SSO session and the refresh families it started.
#[utoipa::path(get, path = "/oauth/logout", tag = "openid connect",
    params(
        ("id_token_hint" = Option<String>, Query, description = "An ID token keymint issued (expired is fine)"),
        ("post_logout_redirect_uri" = Option<String>, Query, description = "Registered for the client, exactly"),
        ("state" = Option<String>, Query),
        ("client_id" = Option<String>, Query),
    ),
    responses(
        (status = 200, description = "Signed out, or (no id_token_hint) a confirmation form (HTML)", content_type = "text/html", body = String),
        (status = 302, description = "To post_logout_redirect_uri with state", headers(("Location" = String))),
        (status = 400, description = "Invalid id_token_hint or unregistered post_logout_redirect_uri (HTML)", content_type = "text/html", body = String),
        (status = 503, description = "The database is unreachable (HTML)", content_type = "text/html", body = String),
    ))]
pub async fn logout_get(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.unwrap_or_default().as_bytes());
    end_session(&s, &headers, &p, false).await
}

/// RP-Initiated Logout by form post, or the confirmation form's answer (`request`, `csrf`).
#[utoipa::path(post, path = "/oauth/logout", tag = "openid connect",
    request_body(content = Option<String>, content_type = "application/x-www-form-urlencoded", description = "The GET parameters, or `request` and `csrf` from the confirmation form; none at all signs out nobody"),
    responses(
        (status = 200, description = "Signed out, or a confirmation form (HTML)", content_type = "text/html", body = String),
        (status = 302, description = "To post_logout_redirect_uri with state", headers(("Location" = String))),
        (status = 400, description = "Invalid id_token_hint or unregistered post_logout_redirect_uri (HTML)", content_type = "text/html", body = String),
        (status = 403, description = "The confirmation's CSRF token does not match (HTML)", content_type = "text/html", body = String),
        (status = 503, description = "The database is unreachable (HTML)", content_type = "text/html", body = String),
    ))]
pub async fn logout_post(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let Some(request) = form.get("request") else {
        return end_session(&s, &headers, &form, false).await;
    };
    if let Err(resp) = session_form(&s, &headers, &form, "Cannot sign out").await {
        return resp;
    }
    end_session(&s, &headers, &Params::parse(request.as_bytes()), true).await
}

async fn end_session(s: &AppState, headers: &HeaderMap, p: &Params, confirmed: bool) -> Response {
    let now = s.now();
    let req = LogoutRequest {
        id_token_hint: p.get("id_token_hint"),
        post_logout_redirect_uri: p.get("post_logout_redirect_uri"),
        state: p.get("state"),
        client_id: p.get("client_id"),
    };
    let plan = match logout::check(s, &req, now).await {
        Ok(Ok(plan)) => plan,
        Ok(Err(m)) => return pages::error(StatusCode::BAD_REQUEST, "Cannot sign out", &m),
        Err(e) => return unavailable(&e),
    };
    let browser = match current_session(s, headers).await {
        Ok(v) => v,
        Err(e) => return unavailable(&e),
    };
    if let Some(b) = browser
        .as_ref()
        .filter(|_| plan.hinted.is_none() && !confirmed)
    {
        let csrf = s.browser.tag("sso", &b.id);
        return pages::confirm_logout(&p.encode(&[], &[]), &csrf);
    }
    // The browser's own session ends when the user confirmed, or when the hint is theirs.
    let browser = browser.filter(|b| {
        confirmed
            || plan
                .hinted
                .as_ref()
                .is_some_and(|(_, sub)| *sub == b.user_id)
    });
    if let Err(e) = logout::end(s, &plan, browser.as_ref(), now).await {
        return unavailable(&e);
    }
    let mut resp = match &plan.redirect {
        Some(url) => found(url),
        None => pages::signed_out(),
    };
    if browser.is_some() {
        let clear = Cookie::Sso.clear(s.config.is_https());
        resp.headers_mut().append(header::SET_COOKIE, clear);
    }
    resp
}
