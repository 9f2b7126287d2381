//! The hosted login page (`GET/POST /login`), `/` and the pages' stylesheet. The sign-in
//! goes through `login::sign_in_browser`, the same password check as `/auth/login`; the form
//! is protected by a double-submit nonce (`km_login` cookie, its HMAC in the form) and the
//! `Origin` check.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::{Error, ErrorCode};
use crate::http::cookies::{Cookie, form_origin_allowed};
use crate::http::extract::ClientIp;
use crate::http::pages::{self, LoginForm};
use crate::login;
use crate::oidc::authorize::Params;
use crate::oidc::{random_secret, safe_return_to, sso};
use crate::state::AppState;

/// How long a login form may sit open before it must be reloaded (seconds).
const FORM_TTL: i64 = 3600;

/// Render the form with its nonce cookie: the browser's own when it has one (so two open
/// tabs both work), else a fresh one.
fn form(
    s: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    return_to: &str,
    username: &str,
    error: Option<&str>,
) -> Response {
    let nonce = Cookie::LoginForm
        .read(headers, s.config.is_https())
        .filter(|n| n.len() == 43)
        .unwrap_or_else(random_secret);
    let csrf = s.browser.tag("login", &nonce);
    let f = LoginForm {
        csrf: &csrf,
        return_to,
        username,
        error,
    };
    let mut resp = pages::login(status, &f);
    let cookie = Cookie::LoginForm.set(s.config.is_https(), &nonce, FORM_TTL);
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    resp
}

/// The hosted sign-in form (HTML, no script).
#[utoipa::path(get, path = "/login", tag = "browser",
    params(
        ("return_to" = Option<String>, Query, description = "A relative path on keymint to return to (anything else: `/`)"),
        ("login_hint" = Option<String>, Query, description = "Username to prefill"),
    ),
    responses(
        (status = 200, description = "The form; sets the `km_login` nonce cookie", content_type = "text/html", body = String),
    ))]
pub async fn login_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q.unwrap_or_default().as_bytes());
    let return_to = safe_return_to(p.get("return_to"));
    let hint = p.get("login_hint").filter(|h| h.len() <= 64).unwrap_or("");
    form(&s, &headers, StatusCode::OK, &return_to, hint, None)
}

/// Sign in from the hosted form: the same throttling and generic error as `/auth/login`.
#[utoipa::path(post, path = "/login", tag = "browser",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`username`, `password`, `csrf`, `return_to`"),
    responses(
        (status = 303, description = "Signed in: sets `km_sso` and goes to `return_to`", headers(("Location" = String), ("Set-Cookie" = String))),
        (status = 400, description = "The form again: username over 64 bytes (HTML)", content_type = "text/html", body = String),
        (status = 401, description = "The form again: invalid username or password (HTML)", content_type = "text/html", body = String),
        (status = 403, description = "The form again: its CSRF nonce is missing or stale (HTML)", content_type = "text/html", body = String),
        (status = 429, description = "The form again: too many failed sign-ins (HTML)", content_type = "text/html", body = String,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The database is unreachable (HTML)", content_type = "text/html", body = String),
    ))]
pub async fn login_submit(
    State(s): State<AppState>,
    ClientIp(addr): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = Params::parse(&body);
    let f = Form {
        s: &s,
        headers: &headers,
        return_to: safe_return_to(p.get("return_to")),
        username: p.get("username").unwrap_or(""),
    };
    if !form_nonce_ok(&s, &headers, p.get("csrf").unwrap_or("")) {
        let msg = "This sign-in form has expired. Please sign in again.";
        return f.again(StatusCode::FORBIDDEN, msg, None);
    }
    let current = current_session(&s, &headers).await.ok().flatten();
    let password = p.get("password").unwrap_or("");
    let signed_in =
        login::sign_in_browser(&s, f.username, password, addr.as_deref(), current.as_ref());
    match signed_in.await {
        Ok((session, secret, _)) => {
            signed_in_response(&s, &f.return_to, &secret, session.expires_at)
        }
        Err(e) => f.refused(&e),
    }
}

/// The form being answered: what to show again if the sign-in fails.
struct Form<'a> {
    s: &'a AppState,
    headers: &'a HeaderMap,
    return_to: String,
    username: &'a str,
}

impl Form<'_> {
    fn again(&self, status: StatusCode, msg: &str, retry_after: Option<u64>) -> Response {
        let (s, h) = (self.s, self.headers);
        let mut resp = form(s, h, status, &self.return_to, self.username, Some(msg));
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }

    /// The form again with what went wrong, in the status `/auth/login` would answer.
    fn refused(&self, e: &Error) -> Response {
        let status = crate::http::error::status(e.code);
        match e.code {
            ErrorCode::InvalidCredentials => {
                self.again(status, "Invalid username or password.", None)
            }
            ErrorCode::ValidationError => self.again(status, &e.message, None),
            ErrorCode::RateLimited => {
                let secs = e.retry_after.unwrap_or(1);
                let msg = format!("Too many failed sign-ins. Try again in {secs} seconds.");
                self.again(status, &msg, e.retry_after)
            }
            _ => self.again(
                status,
                &crate::http::error::public_message(e),
                e.retry_after,
            ),
        }
    }
}

/// The form's nonce: the `km_login` cookie's HMAC, from an allowed origin.
fn form_nonce_ok(s: &AppState, headers: &HeaderMap, presented: &str) -> bool {
    let nonce = Cookie::LoginForm.read(headers, s.config.is_https());
    nonce
        .as_deref()
        .is_some_and(|n| s.browser.check("login", n, presented))
        && form_origin_allowed(s, headers)
}

/// 303 to `return_to` with the new `km_sso` cookie; the form's nonce is spent.
fn signed_in_response(s: &AppState, return_to: &str, secret: &str, expires_at: i64) -> Response {
    let https = s.config.is_https();
    let location = [(header::LOCATION, return_to.to_string())];
    let mut resp = (StatusCode::SEE_OTHER, location).into_response();
    let h = resp.headers_mut();
    let ttl = expires_at - s.now();
    h.append(header::SET_COOKIE, Cookie::Sso.set(https, secret, ttl));
    h.append(header::SET_COOKIE, Cookie::LoginForm.clear(https));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `GET /`: who is signed in on this browser.
pub async fn home(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let name = match current_session(&s, &headers).await {
        Ok(Some(session)) => match s.users.by_id(&session.user_id).await {
            Ok(Some(u)) if !u.disabled => Some(u.username),
            _ => None,
        },
        _ => None,
    };
    pages::home(name.as_deref())
}

/// The browser's live SSO session, if its `km_sso` cookie names one.
pub async fn current_session(
    s: &AppState,
    headers: &HeaderMap,
) -> crate::error::Result<Option<sso::SsoSession>> {
    match Cookie::Sso.read(headers, s.config.is_https()) {
        Some(secret) => sso::find(s, &secret, s.now()).await,
        None => Ok(None),
    }
}

/// `GET /assets/keymint.css`.
pub async fn stylesheet() -> Response {
    pages::stylesheet()
}
