//! The audit trail: logins, rotations, key and token revocations, admin changes. Writes are
//! best effort: a failed audit write is logged loudly but never fails the action it records.

use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
use serde_json::Value;

use crate::db::entities::audit_events;

/// One event to record. `detail` must never hold a secret.
pub struct Event<'a> {
    pub kind: &'a str,
    pub outcome: &'a str,
    pub actor: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub detail: Value,
}

impl<'a> Event<'a> {
    pub fn new(kind: &'a str, outcome: &'a str) -> Self {
        Self {
            kind,
            outcome,
            actor: None,
            subject: None,
            ip: None,
            detail: Value::Object(Default::default()),
        }
    }
    pub fn actor(mut self, a: Option<&'a str>) -> Self {
        self.actor = a;
        self
    }
    pub fn subject(mut self, s: Option<&'a str>) -> Self {
        self.subject = s;
        self
    }
    pub fn ip(mut self, ip: Option<&'a str>) -> Self {
        self.ip = ip;
        self
    }
    pub fn detail(mut self, d: Value) -> Self {
        self.detail = d;
        self
    }
}

/// Append `e` to the audit log.
pub async fn record(db: &DatabaseConnection, e: Event<'_>, now: i64) {
    let row = audit_events::ActiveModel {
        at: Set(now),
        kind: Set(e.kind.into()),
        outcome: Set(e.outcome.into()),
        actor: Set(e.actor.map(Into::into)),
        subject: Set(e.subject.map(Into::into)),
        ip: Set(e.ip.map(Into::into)),
        detail: Set(e.detail.to_string()),
        ..Default::default()
    };
    if let Err(err) = audit_events::Entity::insert(row)
        .exec_without_returning(db)
        .await
    {
        tracing::error!(
            kind = e.kind,
            outcome = e.outcome,
            "audit write failed: {err}"
        );
    }
}
