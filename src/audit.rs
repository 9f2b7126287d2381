//! The audit trail: logins, rotations, key and token revocations, admin changes. Writes are
//! best effort: a failed audit write is logged loudly but never fails the action it records.
//!
//! Bounded by construction (SPEC section 6): every string is cut to [`MAX_FIELD`] bytes,
//! repeated failures are one record per aggregation key with a `count`
//! ([`record_repeated`]), and cleanup deletes events older than `KEYMINT_AUDIT_RETENTION`.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
use std::collections::HashMap;

use serde_json::Value;

use crate::db::entities::audit_events::{self, Column as A};

/// Longest string an audit record keeps, in bytes.
pub const MAX_FIELD: usize = 256;

/// `s` cut to at most `MAX_FIELD` bytes on a character boundary.
pub fn cut(s: &str) -> &str {
    if s.len() <= MAX_FIELD {
        return s;
    }
    let mut end = MAX_FIELD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Every string in `v`, keys included, cut to `MAX_FIELD` bytes.
fn cut_json(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(cut(&s).to_string()),
        Value::Array(a) => Value::Array(a.into_iter().map(cut_json).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (cut(&k).to_string(), cut_json(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Who performs an administrative action, as the audit log names them.
#[derive(Clone, Copy, Debug)]
pub enum Actor<'a> {
    /// An admin through the API: their user id.
    User(&'a str),
    /// The command line.
    Cli,
    /// The scheduler.
    Scheduler,
}

impl Actor<'_> {
    pub fn name(&self) -> &str {
        match self {
            Actor::User(id) => id,
            Actor::Cli => "cli",
            Actor::Scheduler => "scheduler",
        }
    }
}

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
    write(db, e, None, now).await
}

/// Record `e` as one occurrence of a repeated event: the first occurrence with a given `key`
/// inserts a record, later ones add to its `count`. Callers put the time bucket in `key`
/// (e.g. the minute), so a flood of attempts costs one row per bucket.
pub async fn record_repeated(db: &DatabaseConnection, e: Event<'_>, key: &str, now: i64) {
    write(db, e, Some(key), now).await
}

/// The row for `e`; `dedup` is the aggregation key of a repeated event, stored hashed.
fn row(e: Event<'_>, dedup: Option<&str>, count: i64, now: i64) -> audit_events::ActiveModel {
    audit_events::ActiveModel {
        at: Set(now),
        kind: Set(cut(e.kind).into()),
        outcome: Set(cut(e.outcome).into()),
        actor: Set(e.actor.map(|s| cut(s).into())),
        subject: Set(e.subject.map(|s| cut(s).into())),
        ip: Set(e.ip.map(|s| cut(s).into())),
        detail: Set(cut_json(e.detail).to_string()),
        count: Set(count),
        dedup: Set(dedup.map(|k| {
            // The key may hold user input: hash it to a fixed size.
            use base64::Engine;
            use sha2::Digest;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(k))
        })),
        ..Default::default()
    }
}

async fn write(db: &DatabaseConnection, e: Event<'_>, dedup: Option<&str>, now: i64) {
    let (kind, outcome) = (e.kind, e.outcome);
    if let Err(err) = insert(db, row(e, dedup, 1, now), 1).await {
        tracing::error!(kind, outcome, "audit write failed: {err}");
    }
}

/// Insert `row`; a repeated event whose record exists adds `n` to its count instead.
async fn insert(
    db: &DatabaseConnection,
    row: audit_events::ActiveModel,
    n: i64,
) -> Result<(), sea_orm::DbErr> {
    let repeated = matches!(&row.dedup, Set(Some(_)));
    let mut insert = audit_events::Entity::insert(row);
    if repeated {
        insert = insert.on_conflict(
            OnConflict::column(A::Dedup)
                .value(A::Count, Expr::col((audit_events::Entity, A::Count)).add(n))
                .to_owned(),
        );
    }
    insert.exec_without_returning(db).await.map(|_| ())
}

/// Repeated events held in memory and written every `KEYMINT_SYNC_INTERVAL` ([`Repeats::flush`],
/// from the sync loop, and at shutdown): a flood of refused attempts then costs one write per
/// aggregation key per second, not one per attempt. Bounded: when full, events are written
/// directly. A crash loses at most one interval of counts.
#[derive(Default)]
pub struct Repeats {
    pending: std::sync::Mutex<HashMap<String, (audit_events::ActiveModel, i64)>>,
}

/// Aggregation keys held at once before events are written directly.
const MAX_PENDING: usize = 10_000;

impl Repeats {
    /// Count `e` under aggregation key `key` (which carries its time bucket).
    pub async fn record(&self, db: &DatabaseConnection, e: Event<'_>, key: &str, now: i64) {
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, n)) = pending.get_mut(key) {
                *n += 1;
                return;
            }
            if pending.len() < MAX_PENDING {
                pending.insert(key.to_string(), (row(e, Some(key), 1, now), 1));
                return;
            }
        }
        write(db, e, Some(key), now).await
    }

    /// Write every held event.
    pub async fn flush(&self, db: &DatabaseConnection) {
        let held: Vec<_> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.drain().map(|(_, v)| v).collect()
        };
        for (mut row, n) in held {
            row.count = Set(n);
            if let Err(err) = insert(db, row, n).await {
                tracing::error!(count = n, "audit write of repeated events failed: {err}");
            }
        }
    }
}

/// Which events to list: filters and a keyset page (`before` an id, newest first).
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub kind: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub before: Option<i64>,
    pub limit: u64,
}

/// A page of events, newest first, and the `before` of the next page if there is one.
pub async fn list(
    db: &DatabaseConnection,
    q: Query,
) -> crate::error::Result<(Vec<audit_events::Model>, Option<i64>)> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    if !(1..=500).contains(&q.limit) {
        return Err(crate::error::Error::validation(
            "limit must be between 1 and 500",
        ));
    }
    let mut find = audit_events::Entity::find();
    if let Some(k) = q.kind {
        find = find.filter(A::Kind.eq(k));
    }
    if let Some(o) = q.outcome {
        find = find.filter(A::Outcome.eq(o));
    }
    if let Some(t) = q.since {
        find = find.filter(A::At.gte(t));
    }
    if let Some(t) = q.until {
        find = find.filter(A::At.lt(t));
    }
    if let Some(b) = q.before {
        find = find.filter(A::Id.lt(b));
    }
    let mut rows = find.order_by_desc(A::Id).limit(q.limit + 1).all(db).await?;
    let more = rows.len() as u64 > q.limit;
    rows.truncate(q.limit as usize);
    let next = if more {
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok((rows, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_cut_on_char_boundaries() {
        assert_eq!(cut("short"), "short");
        let long = "é".repeat(200); // 400 bytes
        let c = cut(&long);
        assert!(c.len() <= MAX_FIELD && c.len() >= MAX_FIELD - 1);
        let v = cut_json(serde_json::json!({"username": "x".repeat(70_000), "n": 3}));
        assert_eq!(v["username"].as_str().unwrap().len(), MAX_FIELD);
        assert_eq!(v["n"], 3);
    }
}
