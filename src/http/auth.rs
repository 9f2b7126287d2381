//! `/auth/*`: login, refresh, logout, me. Handlers extract, call the domain, map the result.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, ErrorCode};
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiJson, Bearer, ClientIp, OptionalJson};
use crate::login::{self, SignIn};
use crate::sessions::TokenPair;
use crate::state::AppState;

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
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse,
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
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, Error> {
    let sign_in = SignIn {
        username: &req.username,
        password: &req.password,
        addr: addr.as_deref(),
        client: None,
        scope: "profile".into(),
    };
    Ok(token_response(login::sign_in(&s, sign_in).await?))
}

/// Exchange a refresh token for a new pair. Presenting a used refresh token revokes its family.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair in the same family", body = TokenResponse),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "INVALID_TOKEN, REFRESH_TOKEN_EXPIRED, REFRESH_TOKEN_REUSED or TOKEN_REVOKED", body = ErrorBody),
    ))]
pub async fn refresh(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Response, Error> {
    let pair = s
        .sessions
        .refresh(&req.refresh_token, None, None, s.now())
        .await?;
    Ok(token_response(pair))
}

/// Revoke the presented access token and its refresh family (and, optionally, the family of a
/// given refresh token of the same user).
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body(content = Option<LogoutRequest>),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
    ))]
pub async fn logout(
    State(s): State<AppState>,
    Bearer(claims): Bearer,
    OptionalJson(req): OptionalJson<LogoutRequest>,
) -> Result<StatusCode, Error> {
    let refresh = req.as_ref().and_then(|r| r.refresh_token.as_deref());
    login::sign_out(&s, &claims, refresh).await?;
    Ok(StatusCode::NO_CONTENT)
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
