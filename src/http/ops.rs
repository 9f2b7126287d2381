//! Operations endpoints: liveness and readiness.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;
use crate::http::error::ErrorBody;
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
    s.ready().await?;
    Ok(Json(Status { status: "ready" }))
}

/// Prometheus metrics: tokens issued, verification failures by reason, logins by outcome,
/// rotations, key ages, live revocations, cleanup runs, request latencies.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4",
        content_type = "text/plain; version=0.0.4; charset=utf-8", body = String)))]
pub async fn metrics(State(s): State<AppState>) -> Result<axum::response::Response, Error> {
    if s.config.metrics_bind.is_some() {
        // Served only on KEYMINT_METRICS_BIND.
        return Err(Error::not_found("route"));
    }
    exposition(&s).await
}

/// The Prometheus exposition of `app`, for whichever listener serves it.
pub async fn exposition(s: &AppState) -> Result<axum::response::Response, Error> {
    use axum::response::IntoResponse;
    let body = crate::metrics::exposition(s).await?;
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    Ok(([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response())
}
