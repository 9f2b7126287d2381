//! Operations endpoints: liveness and readiness.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{Error, ErrorCode};
use crate::http::error::ErrorBody;
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
    use crate::keys::{KeyState, Purpose};
    use axum::response::IntoResponse;
    let now = crate::tokens::now();
    let keys = s.keys.list().await?;
    let live = keys
        .iter()
        .filter(|k| k.state != KeyState::Revoked && k.expires_at.is_none_or(|e| e > now));
    // Refresh-key kids are never published, so they are not shown here either: only the
    // age of the oldest refresh key per state.
    let mut ages: Vec<(String, &str, &str, i64)> = Vec::new();
    for k in live {
        let age = now - k.created_at;
        if k.purpose == Purpose::Access {
            ages.push((k.kid.clone(), k.purpose.as_str(), k.state.as_str(), age));
        } else if let Some(e) = ages
            .iter_mut()
            .find(|e| e.0.is_empty() && e.2 == k.state.as_str())
        {
            e.3 = e.3.max(age);
        } else {
            ages.push((String::new(), k.purpose.as_str(), k.state.as_str(), age));
        }
    }
    let body = s.metrics.render(&ages, s.denylist.len());
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
