//! `/oauth/*`: RFC 6749 token endpoint, RFC 7009 revocation, RFC 7662 introspection. Form
//! bodies in, RFC 6749 error JSON out (`{"error", "error_description"}`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, ErrorCode};
use crate::http::auth::no_store;
use crate::http::extract::ClientIp;
use crate::http::oauth_form::{ClientForm, invalid_client, required};
use crate::http::schemas::IntrospectionDoc;
use crate::oauth::{self, OAuthError};
use crate::state::AppState;

/// RFC 6749 section 5.2 error body.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": "invalid_grant", "error_description": "invalid username or password"}))]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, `rate_limited`, `temporarily_unavailable`
    /// or `server_error`.
    pub error: String,
    pub error_description: String,
}

/// An RFC 6749 section 5.2 error as it goes on the wire.
#[derive(Debug, PartialEq, Eq)]
pub struct Rfc6749 {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
    pub retry_after: Option<u64>,
}

/// The one mapping of OAuth failures to RFC 6749 errors: protocol errors keep their code
/// (`invalid_client` is 401, the rest 400); domain errors map by their code.
pub fn rfc6749(e: OAuthError) -> Rfc6749 {
    use ErrorCode::*;
    let (error, description, retry_after) = match e {
        OAuthError::Protocol { error, description } => (error, description, None),
        OAuthError::Domain(e) => {
            let error = match e.code {
                InvalidCredentials | InvalidToken | TokenExpired | TokenRevoked
                | RefreshTokenExpired | RefreshTokenReused => "invalid_grant",
                ValidationError | PayloadTooLarge | RequestTimeout | CsrfFailed => {
                    "invalid_request"
                }
                Forbidden => "unauthorized_client",
                RateLimited => "rate_limited",
                ServiceUnavailable => "temporarily_unavailable",
                MissingToken | NotFound | Conflict | InternalError => "server_error",
            };
            let description = if error == "server_error" {
                crate::http::error::public_message(&Error::internal(&e))
            } else {
                e.message.clone()
            };
            (error, description, e.retry_after)
        }
    };
    let status = match error {
        "invalid_client" => 401,
        "rate_limited" => 429,
        "temporarily_unavailable" => 503,
        "server_error" => 500,
        _ => 400,
    };
    Rfc6749 {
        status,
        error,
        description,
        retry_after,
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let e = rfc6749(self);
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = OAuthErrorBody {
            error: e.error.into(),
            error_description: e.description,
        };
        let mut resp = no_store((status, Json(body)).into_response());
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"keymint\""),
            );
        }
        if let Some(secs) = e.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Form fields of `POST /oauth/token` (which ones apply depends on `grant_type`).
#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    /// `password`, `refresh_token`, `client_credentials` or `authorization_code`.
    #[schema(example = "client_credentials")]
    pub grant_type: String,
    /// authorization_code grant: the code from the redirect.
    pub code: Option<String>,
    /// authorization_code grant: the redirect URI of the authorization request.
    pub redirect_uri: Option<String>,
    /// authorization_code grant: the PKCE verifier (RFC 7636).
    pub code_verifier: Option<String>,
    /// password grant.
    pub username: Option<String>,
    /// password grant.
    #[schema(format = Password)]
    pub password: Option<String>,
    /// refresh_token grant.
    pub refresh_token: Option<String>,
    /// Space-separated scopes; defaults to what the client or user may have.
    pub scope: Option<String>,
    /// Client authentication in the body (alternative to HTTP Basic).
    pub client_id: Option<String>,
    #[schema(format = Password)]
    pub client_secret: Option<String>,
}

/// RFC 6749 section 5.1 token response.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6Ii4uLiJ9.eyJzdWIiOiIuLi4ifQ.c2ln", "token_type": "Bearer", "expires_in": 900, "scope": "billing:read"}))]
pub struct OAuthTokenResponse {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    #[schema(example = 900)]
    pub expires_in: i64,
    /// Absent for `client_credentials`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<i64>,
    #[schema(example = "profile")]
    pub scope: String,
    /// OpenID Connect ID token (authorization_code grant only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// Form fields of `/oauth/revoke` and `/oauth/introspect`.
#[derive(Deserialize, ToSchema)]
pub struct TokenOnlyRequest {
    pub token: String,
    /// `access_token` or `refresh_token`; a hint only.
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    #[schema(format = Password)]
    pub client_secret: Option<String>,
}

/// Issue tokens (RFC 6749): `password`, `refresh_token`, `client_credentials` and
/// `authorization_code` (with PKCE; returns an OpenID Connect ID token) grants.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "Tokens", body = OAuthTokenResponse, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "invalid_request, invalid_grant, unauthorized_client, unsupported_grant_type or invalid_scope", body = OAuthErrorBody),
        (status = 401, description = "invalid_client", body = OAuthErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE", body = crate::http::error::ErrorBody),
        (status = 429, description = "rate_limited: too many failed password grants", body = OAuthErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn token(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    f: ClientForm,
) -> Result<Response, OAuthError> {
    let issued = oauth::token(&s, f.client, &f.form, ip.as_deref()).await?;
    Ok(no_store(
        Json(OAuthTokenResponse::from(issued)).into_response(),
    ))
}

impl From<oauth::Issued> for OAuthTokenResponse {
    fn from(i: oauth::Issued) -> Self {
        match i {
            oauth::Issued::Pair(p) => OAuthTokenResponse {
                access_token: p.access_token,
                token_type: "Bearer".into(),
                expires_in: p.expires_in,
                refresh_token: Some(p.refresh_token),
                refresh_expires_in: Some(p.refresh_expires_in),
                scope: p.scope,
                id_token: None,
            },
            oauth::Issued::Client(t) => OAuthTokenResponse {
                access_token: t.access_token,
                token_type: "Bearer".into(),
                expires_in: t.expires_in,
                refresh_token: None,
                refresh_expires_in: None,
                scope: t.scope,
                id_token: None,
            },
            oauth::Issued::Code(c) => {
                let p = c.pair;
                OAuthTokenResponse {
                    access_token: p.access_token,
                    token_type: "Bearer".into(),
                    expires_in: p.expires_in,
                    refresh_token: c.with_refresh.then_some(p.refresh_token),
                    refresh_expires_in: c.with_refresh.then_some(p.refresh_expires_in),
                    scope: p.scope,
                    id_token: Some(c.id_token),
                }
            }
        }
    }
}

/// Revoke a token (RFC 7009). Answers 200 for unknown and invalid tokens too.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = TokenOnlyRequest, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "Revoked, or not a token of ours"),
        (status = 400, description = "invalid_request or unauthorized_client (the token belongs to another client)", body = OAuthErrorBody),
        (status = 401, description = "invalid_client: bad client credentials, or none for a token issued to a confidential client (which stays valid)", body = OAuthErrorBody),
    ))]
pub async fn revoke(State(s): State<AppState>, f: ClientForm) -> Result<StatusCode, OAuthError> {
    let token = required(&f.form, "token")?;
    let hint = f.field("token_type_hint");
    oauth::revoke(&s, token, hint, f.client.as_ref(), s.now()).await?;
    Ok(StatusCode::OK)
}

/// Introspect a token (RFC 7662). The caller authenticates as a client, or with an admin's
/// bearer token. A client learns only about tokens issued to it or addressed to its
/// audience (`{"active": false}` for any other); an admin sees every token.
#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth",
    request_body(content = TokenOnlyRequest, content_type = "application/x-www-form-urlencoded"),
    security(("client_basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "`{\"active\": false}` or the token's claims", body = IntrospectionDoc,
            example = json!({"active": true, "sub": "c_5f2b8e0c", "exp": 1795435379, "iat": 1795434479, "jti": "0f1e2d3c", "scope": "billing:read", "client_id": "c_5f2b8e0c", "token_type": "access_token", "iss": "http://127.0.0.1:8080", "aud": "https://billing.example"})),
        (status = 400, description = "invalid_request", body = OAuthErrorBody),
        (status = 401, description = "invalid_client: the caller did not authenticate", body = OAuthErrorBody),
    ))]
pub async fn introspect(State(s): State<AppState>, f: ClientForm) -> Result<Response, OAuthError> {
    // A public client identifies itself but does not authenticate: it may not introspect.
    let confidential = f.client.as_ref().is_some_and(|c| !c.public);
    if !confidential && !is_admin_bearer(&s, &f.headers).await? {
        return Err(invalid_client());
    }
    let token = required(&f.form, "token")?;
    let hint = f.field("token_type_hint");
    let result = oauth::introspect(&s, token, hint, f.client.as_ref(), s.now()).await?;
    Ok(no_store(Json(result).into_response()))
}

async fn is_admin_bearer(s: &AppState, headers: &HeaderMap) -> Result<bool, OAuthError> {
    if crate::http::extract::access_credential(headers, s.config.is_https()).is_none() {
        return Ok(false);
    }
    let now = s.now();
    let verified = crate::http::extract::authenticate_request(s, &Method::POST, headers, |t| {
        s.authenticate(t, now)
    });
    let admin = match verified {
        Ok(claims) => s.require_admin(claims).await,
        Err(e) => Err(e),
    };
    match admin {
        Ok(_) => Ok(true),
        // A failing server (the database away or broken) is a server error, not a failed
        // authentication: whatever answers 5xx passes through.
        Err(e) if crate::http::error::status(e.code).is_server_error() => Err(e.into()),
        Err(_) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_maps_to_one_rfc6749_error() {
        use ErrorCode::*;
        let domain = [
            (InvalidCredentials, 400, "invalid_grant"),
            (InvalidToken, 400, "invalid_grant"),
            (TokenExpired, 400, "invalid_grant"),
            (TokenRevoked, 400, "invalid_grant"),
            (RefreshTokenExpired, 400, "invalid_grant"),
            (RefreshTokenReused, 400, "invalid_grant"),
            (ValidationError, 400, "invalid_request"),
            (PayloadTooLarge, 400, "invalid_request"),
            (RequestTimeout, 400, "invalid_request"),
            (Forbidden, 400, "unauthorized_client"),
            (RateLimited, 429, "rate_limited"),
            (CsrfFailed, 400, "invalid_request"),
            (ServiceUnavailable, 503, "temporarily_unavailable"),
            (MissingToken, 500, "server_error"),
            (NotFound, 500, "server_error"),
            (Conflict, 500, "server_error"),
            (InternalError, 500, "server_error"),
        ];
        assert_eq!(domain.len(), ErrorCode::ALL.len());
        for (code, status, error) in domain {
            let got = rfc6749(OAuthError::Domain(Error::new(code, "m")));
            assert_eq!((got.status, got.error), (status, error), "{code:?}");
        }
        let limited = rfc6749(Error::rate_limited(7).into());
        assert_eq!(limited.retry_after, Some(7));
        let leaked = rfc6749(Error::internal("dsn=postgres://u:secret@h").into());
        assert!(
            !leaked.description.contains("secret"),
            "{}",
            leaked.description
        );
        for (error, status) in [
            ("invalid_client", 401),
            ("invalid_scope", 400),
            ("unsupported_grant_type", 400),
            ("unauthorized_client", 400),
        ] {
            assert_eq!(rfc6749(OAuthError::new(error, "d")).status, status);
        }
    }
}
