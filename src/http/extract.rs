//! Extractors that speak keymint's error format: JSON bodies, bearer tokens, client address.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorCode};
use crate::http::cookies::{Cookie, check_csrf, state_changing};
use crate::state::AppState;
use crate::tokens::AccessClaims;

/// `axum::Json`, with rejections turned into `VALIDATION_ERROR` / `PAYLOAD_TOO_LARGE`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rej) if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => Err(
                Error::new(ErrorCode::PayloadTooLarge, "request body exceeds 64 KiB"),
            ),
            Err(rej) => Err(Error::validation(rej.body_text())),
        }
    }
}

/// An optional JSON body: an empty (or all-whitespace) body is `None`; anything else must be
/// valid JSON for `T` (`VALIDATION_ERROR` otherwise).
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rej| match rej.status() {
                axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                    Error::new(ErrorCode::PayloadTooLarge, "request body exceeds 64 KiB")
                }
                _ => Error::validation(rej.body_text()),
            })?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        serde_json::from_slice(&body)
            .map(|v| OptionalJson(Some(v)))
            .map_err(|e| Error::validation(format!("invalid JSON body: {e}")))
    }
}

/// `axum::extract::Query`, with rejections turned into `VALIDATION_ERROR`.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|rej| Error::validation(rej.body_text()))
    }
}

/// The raw bearer token of the request, if any.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// `MISSING_TOKEN`: no `Authorization: Bearer` header (nor access cookie).
pub fn missing_token() -> Error {
    Error::new(
        ErrorCode::MissingToken,
        "an Authorization: Bearer token is required",
    )
}

/// The request's access token: the `Authorization: Bearer` header, or else the cookie-mode
/// access cookie (`true`).
pub fn access_credential(headers: &HeaderMap, https: bool) -> Option<(String, bool)> {
    if let Some(t) = bearer_token(headers) {
        return Some((t.to_string(), false));
    }
    Cookie::Access.read(headers, https).map(|t| (t, true))
}

/// Verify the request's access token (header or cookie) with `verify`; a cookie on a
/// state-changing request must pass the CSRF rule as well.
pub fn authenticate_request(
    s: &AppState,
    method: &Method,
    headers: &HeaderMap,
    verify: impl FnOnce(&str) -> Result<AccessClaims, Error>,
) -> Result<AccessClaims, Error> {
    let (token, from_cookie) =
        access_credential(headers, s.config.is_https()).ok_or_else(missing_token)?;
    let claims = verify(&token)?;
    if from_cookie && state_changing(method) {
        check_csrf(s, headers, claims.sid.as_deref())?;
    }
    Ok(claims)
}

/// A verified, unrevoked access token for keymint's own audience, from the `Authorization`
/// header or the access cookie.
pub struct Bearer(pub AccessClaims);

impl FromRequestParts<AppState> for Bearer {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let now = state.now();
        authenticate_request(state, &parts.method, &parts.headers, |t| {
            state.authenticate(t, now)
        })
        .map(Bearer)
    }
}

/// The client address limits are counted under ([`crate::net::limit_key`]): the TCP peer, or,
/// when the peer is in `KEYMINT_TRUSTED_PROXIES`, the right-most untrusted `X-Forwarded-For`
/// entry. `None` when the server runs without connect info.
pub struct ClientIp(pub Option<String>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let Some(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(ClientIp(None));
        };
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        let client = crate::net::client_addr(peer.0.ip(), forwarded, &s.config.trusted_proxies);
        Ok(ClientIp(Some(crate::net::limit_key(client))))
    }
}
