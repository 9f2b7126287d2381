//! Operations endpoints: liveness and readiness.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{Error, ErrorBody, ErrorCode};
use crate::keys::Purpose;
use crate::state::AppState;

/// Health status.
#[derive(Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Status)))]
pub async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Readiness: the database answers and each purpose has an active key.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Status),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn readyz(State(s): State<AppState>) -> Result<Json<Status>, Error> {
    if s.db.ping().await.is_err() {
        return Err(Error::new(
            ErrorCode::ServiceUnavailable,
            "database unreachable",
        ));
    }
    let ring = s.keys.ring();
    if Purpose::ALL.iter().any(|p| ring.signer(*p).is_none()) {
        return Err(Error::new(
            ErrorCode::ServiceUnavailable,
            "no active signing key",
        ));
    }
    Ok(Json(Status { status: "ready" }))
}
