//! `GET /admin/audit`: the audit trail, newest first, keyset-paged.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit;
use crate::error::Error;
use crate::http::admin::Admin;
use crate::http::error::ErrorBody;
use crate::http::extract::ApiQuery;
use crate::state::AppState;

/// Filters and paging.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Event kind, e.g. `login`, `key.rotate`, `key.revoke`, `token.revoke`, `user.create`.
    pub kind: Option<String>,
    /// `ok` or `failed`.
    pub outcome: Option<String>,
    /// Only events at or after this Unix time.
    pub since: Option<i64>,
    /// Only events before this Unix time.
    pub until: Option<i64>,
    /// Only events with an id below this (the `next_before` of the previous page).
    pub before: Option<i64>,
    /// Page size, 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
}

/// One audit event.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub kind: String,
    pub outcome: String,
    /// Who acted: a user id, a client id, `cli` or `scheduler`.
    pub actor: Option<String>,
    /// Whom it concerned.
    pub subject: Option<String>,
    pub ip: Option<String>,
    pub detail: serde_json::Value,
    /// How many attempts this record stands for: repeated failed or throttled logins are one
    /// record per (address, username, minute) with a count; every other event is 1.
    pub count: i64,
}

impl From<crate::db::entities::audit_events::Model> for AuditEvent {
    fn from(r: crate::db::entities::audit_events::Model) -> Self {
        AuditEvent {
            id: r.id,
            at: r.at,
            kind: r.kind,
            outcome: r.outcome,
            actor: r.actor,
            subject: r.subject,
            ip: r.ip,
            detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null),
            count: r.count,
        }
    }
}

/// A page of events.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"events": [{"id": 42, "at": 1795434478, "kind": "login", "outcome": "failed", "actor": null, "subject": null, "ip": "192.0.2.7", "detail": {"username": "alice"}, "count": 3}], "next_before": 42}))]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Pass as `before` to get the next page; absent on the last page.
    pub next_before: Option<i64>,
}

/// Audit events: logins (ok and failed), rotations, key revocations, token revocations,
/// admin changes, cleanup runs.
#[utoipa::path(get, path = "/admin/audit", tag = "audit", security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "Newest first", body = AuditPage),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody),
    ))]
pub async fn list_audit(
    State(s): State<AppState>,
    _: Admin,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, Error> {
    let (rows, next_before) = audit::list(&s.db, q.into()).await?;
    let events = rows.into_iter().map(AuditEvent::from).collect();
    Ok(Json(AuditPage {
        events,
        next_before,
    }))
}

impl From<AuditQuery> for audit::Query {
    fn from(q: AuditQuery) -> Self {
        audit::Query {
            limit: q.limit.unwrap_or(100),
            kind: q.kind,
            outcome: q.outcome,
            since: q.since,
            until: q.until,
            before: q.before,
        }
    }
}
