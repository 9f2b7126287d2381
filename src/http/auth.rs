//! `/auth/*`: login, refresh, logout, me. Handlers extract, call the domain, map the result.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{Error, ErrorCode};
use crate::http::cookies::{Cookie, check_csrf, csrf_token};
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiJson, ApiQuery, Bearer, ClientIp, OptionalJson};
use crate::login::{self, SignIn};
use crate::sessions::TokenPair;
use crate::state::AppState;

/// `?mode=cookie` keeps tokens out of JavaScript (SPEC section 7).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModeQuery {
    /// `cookie`: tokens travel in httpOnly cookies, never in the body.
    pub mode: Option<Mode>,
}

/// How tokens are delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Cookie,
}

/// A cookie-mode answer: the tokens are in `km_access` and `km_refresh` (httpOnly); the
/// CSRF token, also in `km_csrf`, goes in `X-CSRF-Token` on state-changing requests.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"token_type": "Bearer", "expires_in": 900, "refresh_expires_in": 2592000, "csrf_token": "kq1C2y0Qy6m4x9QJb3m1Lw8s5Vd7Rr2Tt0Uu9Hh4Gg8"}))]
pub struct CookieSession {
    #[schema(example = "Bearer")]
    pub token_type: String,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
    pub csrf_token: String,
}

/// The body of a login or refresh: tokens, or (cookie mode) none.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum SignedIn {
    Tokens(TokenResponse),
    Cookies(CookieSession),
}

/// Username and password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "alice")]
    pub username: String,
    #[schema(example = "correct horse battery staple", format = Password)]
    pub password: String,
}

/// A refresh token to exchange.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Optional body of a logout.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    pub refresh_token: Option<String>,
}

/// A token pair.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6Ii4uLiJ9.eyJzdWIiOiIuLi4ifQ.c2ln", "refresh_token": "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6Ii4uLiJ9.eyJ0eXBlIjoicmVmcmVzaCJ9.c2ln", "token_type": "Bearer", "expires_in": 900, "refresh_expires_in": 2592000}))]
pub struct TokenResponse {
    /// RS256 JWT (`typ: at+jwt`), verifiable through the JWKS.
    pub access_token: String,
    /// RS256 JWT signed by an unpublished refresh key; only keymint can verify it.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
    /// Seconds until the refresh token expires.
    #[schema(example = 2592000)]
    pub refresh_expires_in: i64,
}

/// The caller.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "6f1c2d4e-8a7b-4c3d-9e2f-1a2b3c4d5e6f", "username": "alice", "roles": ["admin"]}))]
pub struct MeResponse {
    pub id: String,
    #[schema(example = "alice")]
    pub username: String,
    pub roles: Vec<String>,
}

/// Token responses must never be cached (RFC 6749 section 5.1).
pub fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// Cookie mode: the pair goes into cookies; the body carries the lifetimes and CSRF token.
fn cookie_response(s: &AppState, p: TokenPair) -> Response {
    let https = s.config.is_https();
    let csrf = csrf_token(s, p.access.sid.as_deref().unwrap_or_default());
    let mut resp = no_store(
        Json(CookieSession {
            token_type: "Bearer".into(),
            expires_in: p.expires_in,
            refresh_expires_in: p.refresh_expires_in,
            csrf_token: csrf.clone(),
        })
        .into_response(),
    );
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        Cookie::Access.set(https, &p.access_token, p.expires_in),
    );
    h.append(
        header::SET_COOKIE,
        Cookie::Refresh.set(https, &p.refresh_token, p.refresh_expires_in),
    );
    h.append(
        header::SET_COOKIE,
        Cookie::Csrf.set(https, &csrf, p.refresh_expires_in),
    );
    resp
}

/// The `Set-Cookie` headers that delete the cookie-mode cookies.
fn clear_cookies(resp: &mut Response, https: bool) {
    for c in [Cookie::Access, Cookie::Refresh, Cookie::Csrf] {
        resp.headers_mut()
            .append(header::SET_COOKIE, c.clear(https));
    }
}

/// The pair in the mode asked for.
fn answer(s: &AppState, mode: Option<Mode>, p: TokenPair) -> Response {
    match mode {
        Some(Mode::Cookie) => cookie_response(s, p),
        None => token_response(p),
    }
}

fn token_response(p: TokenPair) -> Response {
    let body = TokenResponse {
        access_token: p.access_token,
        refresh_token: p.refresh_token,
        token_type: "Bearer".into(),
        expires_in: p.expires_in,
        refresh_expires_in: p.refresh_expires_in,
    };
    no_store(Json(body).into_response())
}

/// Log in with a username and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    params(ModeQuery),
    responses(
        (status = 200, description = "A new token pair; with `mode=cookie`, the pair in httpOnly cookies (`km_access`, `km_refresh`, and `km_csrf` for JavaScript) and no tokens in the body", body = SignedIn,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "INVALID_CREDENTIALS (same body for unknown user and wrong password)", body = ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED: too many failed logins for this username or address",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn login(
    State(s): State<AppState>,
    ClientIp(addr): ClientIp,
    ApiQuery(q): ApiQuery<ModeQuery>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, Error> {
    let sign_in = SignIn {
        username: &req.username,
        password: &req.password,
        addr: addr.as_deref(),
        client: None,
        scope: "profile".into(),
    };
    let pair = login::sign_in(&s, sign_in).await?;
    Ok(answer(&s, q.mode, pair))
}

/// Exchange a refresh token for a new pair. Presenting a used refresh token revokes its family.
/// With `mode=cookie` the refresh token comes from the `km_refresh` cookie (and
/// `X-CSRF-Token` is required) and the new pair goes back into cookies.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body(content = Option<RefreshRequest>, description = "Required unless `mode=cookie`"),
    params(ModeQuery),
    responses(
        (status = 200, description = "A new token pair in the same family (cookie mode: in cookies)", body = SignedIn),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, REFRESH_TOKEN_EXPIRED, REFRESH_TOKEN_REUSED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "CSRF_FAILED (cookie mode)", body = ErrorBody),
    ))]
pub async fn refresh(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ModeQuery>,
    headers: HeaderMap,
    OptionalJson(req): OptionalJson<RefreshRequest>,
) -> Result<Response, Error> {
    let token = match q.mode {
        Some(Mode::Cookie) => cookie_refresh_token(&s, &headers)?,
        None => req
            .map(|r| r.refresh_token)
            .ok_or_else(|| Error::validation("a JSON body {\"refresh_token\": …} is required"))?,
    };
    let pair = s.sessions.refresh(&token, None, None, s.now()).await?;
    Ok(answer(&s, q.mode, pair))
}

/// The `km_refresh` cookie, after the CSRF rule for its session.
fn cookie_refresh_token(s: &AppState, headers: &HeaderMap) -> Result<String, Error> {
    let token = Cookie::Refresh
        .read(headers, s.config.is_https())
        .ok_or_else(|| Error::new(ErrorCode::MissingToken, "no km_refresh cookie"))?;
    // A token that does not verify fails in `refresh` as INVALID_TOKEN; one that does must
    // come with its session's CSRF token.
    if let Ok(c) = s.tokens.verify_refresh(&s.keys.ring(), &token, s.now()) {
        check_csrf(s, headers, Some(&c.fam))?;
    }
    Ok(token)
}

/// Revoke the presented access token and its refresh family (and, optionally, the family of a
/// given refresh token of the same user). With `mode=cookie` the tokens come from the cookies
/// (`X-CSRF-Token` required), and the cookies are cleared.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body(content = Option<LogoutRequest>),
    params(ModeQuery),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out (cookie mode: the cookies are cleared)"),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "CSRF_FAILED (cookie-authenticated without the CSRF token)", body = ErrorBody),
    ))]
pub async fn logout(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ModeQuery>,
    headers: HeaderMap,
    OptionalJson(req): OptionalJson<LogoutRequest>,
) -> Result<Response, Error> {
    if q.mode == Some(Mode::Cookie) {
        return cookie_logout(&s, &headers).await;
    }
    let now = s.now();
    let claims = crate::http::extract::authenticate_request(&s, &Method::POST, &headers, |t| {
        s.authenticate(t, now)
    })?;
    let refresh = req.as_ref().and_then(|r| r.refresh_token.as_deref());
    login::sign_out(&s, &claims, refresh).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Cookie-mode logout: the session named by the access cookie, or by the refresh cookie when
/// the access token has expired, after the CSRF rule; the cookies are cleared either way.
async fn cookie_logout(s: &AppState, headers: &HeaderMap) -> Result<Response, Error> {
    let (https, now) = (s.config.is_https(), s.now());
    let access = Cookie::Access
        .read(headers, https)
        .and_then(|t| s.authenticate(&t, now).ok());
    let refresh = Cookie::Refresh.read(headers, https);
    let refresh_claims = refresh
        .as_deref()
        .and_then(|t| s.tokens.verify_refresh(&s.keys.ring(), t, now).ok());
    let sid = access
        .as_ref()
        .and_then(|c| c.sid.clone())
        .or_else(|| refresh_claims.as_ref().map(|c| c.fam.clone()));
    let mut resp = match sid {
        None => Error::new(ErrorCode::MissingToken, "no valid session cookie").into_response(),
        Some(sid) => {
            check_csrf(s, headers, Some(&sid))?;
            match (&access, &refresh_claims) {
                (Some(c), _) => login::sign_out(s, c, refresh.as_deref()).await?,
                (None, Some(r)) => login::sign_out_family(s, &r.sub, &r.fam).await?,
                (None, None) => {}
            }
            StatusCode::NO_CONTENT.into_response()
        }
    };
    clear_cookies(&mut resp, https);
    Ok(resp)
}

/// The caller's identity.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The authenticated user", body = MeResponse),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
    ))]
pub async fn me(
    State(s): State<AppState>,
    Bearer(claims): Bearer,
) -> Result<Json<MeResponse>, Error> {
    match s.users.by_id(&claims.sub).await? {
        Some(u) if !u.disabled => Ok(Json(MeResponse {
            id: u.id,
            username: u.username,
            roles: u.roles,
        })),
        Some(_) => Err(Error::new(ErrorCode::TokenRevoked, "the user is disabled")),
        None => Err(Error::invalid_token()),
    }
}
