//! `/admin/*`: key management (admin role). Handlers extract, call the domain, map the error.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::audit::Actor;
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiQuery, authenticate_request};
use crate::http::schemas::{KeyInfoDoc, RotationResultDoc};
use crate::keys::admin::{self as keys, RotationResult};
use crate::keys::{KeyInfo, Purpose};
use crate::state::AppState;
use crate::tokens::AccessClaims;

/// A caller whose token is valid and whose user currently holds the admin role.
pub struct Admin(pub AccessClaims);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        // The token (header or cookie, CSRF-checked) first; then the admin rules, which read
        // the user store.
        let now = state.now();
        let claims = authenticate_request(state, &parts.method, &parts.headers, |t| {
            state.authenticate(t, now)
        })?;
        state.require_admin(claims).await.map(Admin)
    }
}

/// Which purpose to rotate.
#[derive(Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct RotateQuery {
    /// Rotate only this purpose; both when absent.
    #[param(value_type = Option<crate::http::schemas::PurposeDoc>)]
    #[schema(value_type = Option<crate::http::schemas::PurposeDoc>)]
    pub purpose: Option<Purpose>,
}

/// Every signing key with its lifecycle state and times (Unix seconds).
#[utoipa::path(get, path = "/admin/keys", tag = "admin keys", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every key, newest first", body = Vec<KeyInfoDoc>),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: not an admin", body = ErrorBody),
    ))]
pub async fn list_keys(State(s): State<AppState>, _: Admin) -> Result<Json<Vec<KeyInfo>>, Error> {
    Ok(Json(s.keys.list().await?))
}

/// Rotate now: next → active, active → retired, a new next.
#[utoipa::path(post, path = "/admin/keys/rotate", tag = "admin keys", security(("bearer" = [])),
    params(RotateQuery),
    responses(
        (status = 200, description = "The active and next kid of each purpose", body = RotationResultDoc,
            example = json!({"access": {"active": "kid-a2", "next": "kid-a3"}, "refresh": {"active": "kid-r1", "next": "kid-r2"}})),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody),
        (status = 409, description = "CONFLICT: no next key to promote", body = ErrorBody),
    ))]
pub async fn rotate_keys(
    State(s): State<AppState>,
    Admin(who): Admin,
    ApiQuery(q): ApiQuery<RotateQuery>,
) -> Result<Json<RotationResult>, Error> {
    let purposes = q
        .purpose
        .map(|p| vec![p])
        .unwrap_or_else(|| Purpose::ALL.to_vec());
    Ok(Json(
        keys::rotate(&s, Actor::User(&who.sub), &purposes).await?,
    ))
}

/// Revoke a compromised key: unpublished and refused at once; the next key takes over if it
/// was active.
#[utoipa::path(post, path = "/admin/keys/{kid}/revoke", tag = "admin keys", security(("bearer" = [])),
    params(("kid" = String, Path, description = "The key's RFC 7638 thumbprint")),
    responses(
        (status = 200, description = "The revoked key", body = KeyInfoDoc),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
        (status = 409, description = "CONFLICT: the key changed state meanwhile", body = ErrorBody),
    ))]
pub async fn revoke_key(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(kid): Path<String>,
) -> Result<Json<KeyInfo>, Error> {
    let info = keys::revoke(&s, Actor::User(&who.sub), &kid).await?;
    Ok(Json(info))
}
