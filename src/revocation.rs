//! The access-token denylist: revoked jtis and revoked refresh families (`sid`), each held
//! until the last access token it covers has expired. Rows live in the database; a moka cache
//! in front holds every live row, so the hot-path check is a hash lookup with no database
//! round trip.
//!
//! Other instances' revocations arrive by following a position the database assigns, never a
//! writer's clock: on SQLite the row id (one writer at a time, so ids commit in order); on
//! Postgres the writing transaction's id, read from the oldest transaction that was still
//! running at the previous poll (`pg_snapshot_xmin`), so a row whose transaction commits late
//! is read at the first poll after it commits. A full re-read every `RECONCILE` repairs
//! anything missed whatever the cause.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};

use crate::db::entities::revocations::{self, Column as R, Entity as Revocations};
use crate::error::Result;

/// What a denylist row covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One access token.
    Jti,
    /// Every access token issued from one refresh family.
    Sid,
    /// Every access token issued to one (deleted) OAuth client.
    Client,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Jti, Kind::Sid, Kind::Client];

    /// The inverse of `as_str`, so rows read back map to exactly the kind written.
    fn parse(s: &str) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Jti => "jti",
            Kind::Sid => "sid",
            Kind::Client => "cid",
        }
    }
}

struct ExpireAt(crate::clock::Clock);

impl moka::Expiry<String, i64> for ExpireAt {
    fn expire_after_create(&self, _: &String, exp: &i64, _: Instant) -> Option<Duration> {
        // Memory hygiene only: an entry outliving its tokens is harmless, one dying early is
        // not, hence the extra minute.
        let left = exp.saturating_sub(self.0.now()).max(0) as u64;
        Some(Duration::from_secs(left + 60))
    }
}

const LOAD_BATCH: u64 = 10_000;
/// How often a follower re-reads every live row, the safety net under the position.
const RECONCILE: Duration = Duration::from_secs(600);

/// The denylist. Cheap to share behind an `Arc`.
pub struct Denylist {
    db: DatabaseConnection,
    // Unbounded on purpose: evicting a live revocation would un-revoke a token.
    cache: moka::sync::Cache<String, i64>,
    /// Where the next poll starts: a row id (SQLite) or a transaction id (Postgres).
    position: AtomicI64,
    last_reconcile: std::sync::Mutex<Instant>,
    clock: crate::clock::Clock,
}

fn key(kind: Kind, value: &str) -> String {
    format!("{}:{value}", kind.as_str())
}

impl Denylist {
    /// Load every live row into memory.
    pub async fn load(
        db: DatabaseConnection,
        clock: crate::clock::Clock,
        now: i64,
    ) -> Result<Self> {
        let list = Self {
            db,
            cache: moka::sync::Cache::builder()
                .expire_after(ExpireAt(clock.clone()))
                .build(),
            position: AtomicI64::new(0),
            last_reconcile: std::sync::Mutex::new(Instant::now()),
            clock,
        };
        // The position first: whatever commits while the rows load is read again next poll.
        let position = list.current_position().await?;
        list.load_live(now).await?;
        list.position.store(position, Ordering::Relaxed);
        Ok(list)
    }

    /// Read every live row (in pages), for the start and for each reconcile.
    async fn load_live(&self, now: i64) -> Result<usize> {
        let (mut after, mut n) = (0i64, 0);
        loop {
            let rows = Revocations::find()
                .filter(R::Id.gt(after))
                .filter(R::ExpiresAt.gt(now))
                .order_by_asc(R::Id)
                .limit(LOAD_BATCH)
                .all(&self.db)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            n += rows.len();
            self.absorb(&rows);
        }
        Ok(n)
    }

    /// The position at which a poll that starts now must begin next time.
    async fn current_position(&self) -> Result<i64> {
        let backend = self.db.get_database_backend();
        let sql = match backend {
            // Every transaction that has not committed yet has an id at least this.
            DbBackend::Postgres => {
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS p"
            }
            // Every row not yet committed will get a larger id.
            _ => "SELECT COALESCE(MAX(id), 0) AS p FROM revocations",
        };
        let row = self
            .db
            .query_one_raw(Statement::from_string(backend, sql))
            .await?
            .ok_or_else(|| crate::error::Error::internal("no position row"))?;
        Ok(row.try_get::<i64>("", "p")?)
    }

    fn absorb(&self, rows: &[revocations::Model]) {
        for r in rows {
            let Some(kind) = Kind::parse(&r.kind) else {
                tracing::warn!(kind = %r.kind, "skipping revocation row of unknown kind");
                continue;
            };
            self.cache.insert(key(kind, &r.value), r.expires_at);
        }
    }

    /// True when the token `jti`, its family `sid` or its client is revoked. No I/O.
    pub fn is_revoked(&self, jti: &str, sid: Option<&str>, client_id: Option<&str>) -> bool {
        self.cache.contains_key(&key(Kind::Jti, jti))
            || sid.is_some_and(|s| self.cache.contains_key(&key(Kind::Sid, s)))
            || client_id.is_some_and(|c| self.cache.contains_key(&key(Kind::Client, c)))
    }

    /// Write a revocation row through `conn` (which may be a transaction). Call
    /// [`Denylist::remember`] once it has committed.
    pub async fn insert<C: ConnectionTrait>(
        conn: &C,
        kind: Kind,
        value: &str,
        expires_at: i64,
        reason: &str,
        now: i64,
    ) -> Result<()> {
        let row = revocations::ActiveModel {
            kind: Set(kind.as_str().into()),
            value: Set(value.into()),
            expires_at: Set(expires_at),
            created_at: Set(now),
            reason: Set(reason.into()),
            ..Default::default()
        };
        Revocations::insert(row)
            .on_conflict(
                OnConflict::columns([R::Kind, R::Value])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }

    /// Put a committed revocation into this instance's cache at once.
    pub fn remember(&self, kind: Kind, value: &str, expires_at: i64) {
        self.cache.insert(key(kind, value), expires_at);
    }

    /// Revoke and remember in one step (outside any wider transaction).
    pub async fn revoke(
        &self,
        kind: Kind,
        value: &str,
        expires_at: i64,
        reason: &str,
        now: i64,
    ) -> Result<()> {
        Self::insert(&self.db, kind, value, expires_at, reason, now).await?;
        self.remember(kind, value, expires_at);
        Ok(())
    }

    /// Pull rows other instances wrote since the last poll, by database position (and every
    /// live row once per `RECONCILE`). Returns how many rows were read.
    pub async fn sync(&self) -> Result<usize> {
        let due = {
            let last = self
                .last_reconcile
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            last.elapsed() >= RECONCILE
        };
        let next = self.current_position().await?;
        let since = self.position.load(Ordering::Relaxed);
        let rows = match self.db.get_database_backend() {
            DbBackend::Postgres => Revocations::find().filter(R::Txid.gte(since)),
            _ => Revocations::find().filter(R::Id.gt(since)),
        }
        .all(&self.db)
        .await?;
        self.absorb(&rows);
        let mut n = rows.len();
        if due {
            n += self.load_live(self.clock.now()).await?;
            *self
                .last_reconcile
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Instant::now();
        }
        self.position.store(next, Ordering::Relaxed);
        Ok(n)
    }

    /// Live entries in this instance's cache.
    pub fn len(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::Kind;

    #[test]
    fn every_kind_reads_back_as_itself() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("nope"), None);
    }
}
