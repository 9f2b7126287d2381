//! Reading revocations in the order the database commits them, for this instance's follower
//! and for relying parties (`GET /oauth/revocations`). A [`Cursor`] never skips a row,
//! whatever the writers' clocks or the order in which their transactions commit; a row may be
//! read twice.
//!
//! - SQLite has one writer at a time, so `AUTOINCREMENT` ids commit in order: the cursor is the
//!   last id read.
//! - Postgres: rows are read in `(txid, id)` order (`txid` is the writing transaction's id)
//!   inside one repeatable-read snapshot. A transaction with a smaller id than the last row
//!   read may still be running, invisible; the snapshot lists every such transaction, and the
//!   cursor carries those below its position (`pending`), so the next read takes their rows
//!   whenever they commit. Transactions that start later get larger ids, which the keyset
//!   reaches anyway.

use base64::Engine;
use sea_orm::{
    AccessMode, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend,
    EntityTrait, IsolationLevel, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};

use super::Kind;
use crate::db::entities::revocations::{self, Column as R, Entity as Revocations};
use crate::error::{Error, Result};

/// At most this many in-flight transactions are carried in a cursor; Postgres' own limit on
/// concurrent transactions (max_connections) is far lower in any sane deployment.
const MAX_PENDING: usize = 4096;

/// Where a reader stands in the feed. Opaque to clients ([`Cursor::encode`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The position of the last row read: its transaction id (Postgres) or its id (SQLite).
    pos: i64,
    /// The id of the last row read, ordering rows of one transaction.
    id: i64,
    /// Transactions below `pos` that were still running at the last read (Postgres).
    pending: Vec<i64>,
}

/// One revocation as the feed lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub value: String,
    /// Unix seconds: the last token it covers expires then.
    pub expires_at: i64,
}

/// A page of the feed and the cursor to read the next one from.
pub struct Page {
    pub entries: Vec<Entry>,
    pub next: Cursor,
}

impl Cursor {
    /// Before the oldest live entry.
    pub fn start() -> Cursor {
        Cursor::default()
    }

    /// The wire form: URL-safe, opaque, versioned.
    pub fn encode(&self) -> String {
        let pending: Vec<String> = self.pending.iter().map(i64::to_string).collect();
        let text = format!("1.{}.{}.{}", self.pos, self.id, pending.join("-"));
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    /// The inverse of [`Cursor::encode`]; `None` for anything it did not produce.
    pub fn decode(s: &str) -> Option<Cursor> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let mut parts = text.split('.');
        let (Some("1"), Some(pos), Some(id), Some(pending), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let pending: Vec<i64> = if pending.is_empty() {
            Vec::new()
        } else {
            pending
                .split('-')
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?
        };
        let c = Cursor {
            pos: pos.parse().ok()?,
            id: id.parse().ok()?,
            pending,
        };
        (c.pos >= 0 && c.id >= 0 && c.pending.len() <= MAX_PENDING).then_some(c)
    }
}

/// Up to `limit` live revocations after `after` (expired ones are skipped), and the cursor
/// that follows them. Fewer than `limit` entries means the reader has caught up.
pub async fn read(db: &DatabaseConnection, after: &Cursor, limit: u64, now: i64) -> Result<Page> {
    match db.get_database_backend() {
        DbBackend::Postgres => read_postgres(db, after, limit, now).await,
        _ => read_in_id_order(db, after, limit, now).await,
    }
}

async fn read_in_id_order(
    db: &DatabaseConnection,
    after: &Cursor,
    limit: u64,
    now: i64,
) -> Result<Page> {
    // `+column` keeps SQLite from using the kind or expiry index for these terms: with them it
    // sorted every live row for each page (1M rows: 144 s to read them all); walking the
    // primary key from `after` reads each page in its own time. The page comes back as one
    // packed string (`unpack`): decoding a million rows one by one through the driver took
    // 1.6-2.1 s of a start-up (`cargo bench --bench denylist`).
    let kinds = Kind::ALL.map(|k| format!("'{}'", k.as_str())).join(", ");
    let sql = format!(
        "SELECT max(id) AS last, count(*) AS n, \
         group_concat(kind || ',' || expires_at || ',' || length(CAST(value AS BLOB)) || ':' || value, '') AS packed \
         FROM (SELECT id, kind, value, expires_at FROM revocations \
         WHERE id > ? AND +kind IN ({kinds}) AND +expires_at > ? ORDER BY id LIMIT ?)"
    );
    let values = [after.id.into(), now.into(), (limit as i64).into()];
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        ))
        .await?
        .ok_or_else(|| Error::internal("no page row"))?;
    let last: Option<i64> = row.try_get("", "last")?;
    let n: i64 = row.try_get("", "n")?;
    let packed: Option<String> = row.try_get("", "packed")?;
    let entries = unpack(packed.as_deref().unwrap_or(""))
        .filter(|e| e.len() as i64 == n)
        .ok_or_else(|| Error::internal("unreadable revocation page"))?;
    let next = match last {
        Some(last) => Cursor {
            pos: last,
            id: last,
            pending: Vec::new(),
        },
        None => after.clone(),
    };
    Ok(Page { entries, next })
}

/// Entries packed as `kind,expires_at,byte_length:value` one after another (the length makes
/// any value, commas and colons included, read back exactly).
fn unpack(mut s: &str) -> Option<Vec<Entry>> {
    let mut out = Vec::new();
    while !s.is_empty() {
        let (kind, rest) = s.split_once(',')?;
        let (expires_at, rest) = rest.split_once(',')?;
        let (len, rest) = rest.split_once(':')?;
        let len: usize = len.parse().ok()?;
        let value = rest.get(..len)?;
        s = &rest[len..];
        out.push(Entry {
            kind: Kind::parse(kind)?,
            value: value.to_string(),
            expires_at: expires_at.parse().ok()?,
        });
    }
    Some(out)
}

async fn read_postgres(
    db: &DatabaseConnection,
    after: &Cursor,
    limit: u64,
    now: i64,
) -> Result<Page> {
    // One snapshot for the rows and for the list of transactions they cannot see yet.
    let txn = db
        .begin_with_config(
            Some(IsolationLevel::RepeatableRead),
            Some(AccessMode::ReadOnly),
        )
        .await?;
    let snapshot = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_current_snapshot()::text AS s",
        ))
        .await?
        .ok_or_else(|| Error::internal("no snapshot row"))?
        .try_get::<String>("", "s")?;
    let running = in_progress(&snapshot).ok_or_else(|| Error::internal("unreadable snapshot"))?;
    let mut unseen = Condition::any().add(R::Txid.gt(after.pos)).add(
        Condition::all()
            .add(R::Txid.eq(after.pos))
            .add(R::Id.gt(after.id)),
    );
    if !after.pending.is_empty() {
        unseen = unseen.add(R::Txid.is_in(after.pending.iter().copied()));
    }
    let rows = Revocations::find()
        .filter(unseen)
        .filter(listed(now))
        .order_by_asc(R::Txid)
        .order_by_asc(R::Id)
        .limit(limit)
        .all(&txn)
        .await?;
    txn.commit().await?;
    let before = (after.pos, after.id);
    let (pos, id) = match rows.last().map(|r| (r.txid.unwrap_or(0), r.id)) {
        // A full page may end among the named transactions, below the old position: the
        // position moves back (rows after it are read again), so paging always progresses.
        Some(last) if rows.len() as u64 == limit => last,
        // A short page read everything unseen: the position only moves forward.
        Some(last) => last.max(before),
        None => before,
    };
    Ok(Page {
        entries: entries(rows),
        next: next_cursor(pos, id, running),
    })
}

/// The cursor after a read that ended at `(pos, id)` while `running` transactions were in
/// flight. Running transactions above `pos` are reached by the keyset; those below must be
/// named. Past `MAX_PENDING` of them the position moves back to just before the first one
/// left out, so its rows are read (with some read twice) rather than skipped.
fn next_cursor(pos: i64, id: i64, mut running: Vec<i64>) -> Cursor {
    running.retain(|x| *x <= pos);
    running.sort_unstable();
    match running.get(MAX_PENDING).copied() {
        Some(first_left_out) => {
            running.truncate(MAX_PENDING);
            Cursor {
                pos: first_left_out - 1,
                id: i64::MAX,
                pending: running,
            }
        }
        None => Cursor {
            pos,
            id,
            pending: running,
        },
    }
}

/// Rows the feed lists: of a known kind (filtered here, so that a short page always means
/// caught up) and still covering a live token.
fn listed(now: i64) -> Condition {
    Condition::all()
        .add(R::Kind.is_in(Kind::ALL.map(Kind::as_str)))
        .add(R::ExpiresAt.gt(now))
}

/// The in-progress transaction ids of a `pg_current_snapshot()` text (`xmin:xmax:xip,...`).
fn in_progress(snapshot: &str) -> Option<Vec<i64>> {
    let mut parts = snapshot.split(':');
    let (_xmin, _xmax, xip) = (parts.next()?, parts.next()?, parts.next()?);
    if xip.is_empty() {
        return Some(Vec::new());
    }
    xip.split(',').map(|x| x.parse().ok()).collect()
}

fn entries(rows: Vec<revocations::Model>) -> Vec<Entry> {
    rows.into_iter()
        .filter_map(|r| match Kind::parse(&r.kind) {
            Some(kind) => Some(Entry {
                kind,
                value: r.value,
                expires_at: r.expires_at,
            }),
            None => {
                tracing::warn!(kind = %r.kind, "skipping revocation row of unknown kind");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_as_themselves_and_nothing_else_decodes() {
        for c in [
            Cursor::start(),
            Cursor {
                pos: 77,
                id: 12,
                pending: vec![70, 75],
            },
        ] {
            assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
        for bad in ["", "x", "MS4xLjE", "Mi4xLjEu", "MS4tMS4xLg", "MS4xLjEuYQ"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_cursor_names_the_transactions_below_it_and_never_drops_one() {
        let c = next_cursor(100, 7, vec![120, 90, 95]);
        assert_eq!((c.pos, c.id, c.pending), (100, 7, vec![90, 95]));
        // Too many to carry: the position moves back so the rest are read again.
        let running: Vec<i64> = (0..MAX_PENDING as i64 + 10).rev().collect();
        let c = next_cursor(1_000_000, 7, running);
        assert_eq!(c.pending.len(), MAX_PENDING);
        assert_eq!(c.pending.last(), Some(&(MAX_PENDING as i64 - 1)));
        assert_eq!((c.pos, c.id), (MAX_PENDING as i64 - 1, i64::MAX));
    }

    #[test]
    fn snapshots_name_their_running_transactions() {
        assert_eq!(in_progress("10:20:"), Some(vec![]));
        assert_eq!(in_progress("10:20:10,14"), Some(vec![10, 14]));
        assert_eq!(in_progress("10:20"), None);
        assert_eq!(in_progress("10:20:x"), None);
    }

    #[test]
    fn packed_pages_read_back_any_value_exactly() {
        let e = unpack("jti,100,3:a:bsid,7,0:cid,9,5:x,y:z").unwrap();
        let got: Vec<_> = e
            .iter()
            .map(|e| (e.kind.as_str(), e.value.as_str(), e.expires_at))
            .collect();
        assert_eq!(
            got,
            [("jti", "a:b", 100), ("sid", "", 7), ("cid", "x,y:z", 9)]
        );
        assert_eq!(unpack("").unwrap().len(), 0);
        for bad in ["jti,1,9:short", "xyz,1,1:a", "jti,x,1:a", "jti,1"] {
            assert!(unpack(bad).is_none(), "{bad}");
        }
    }
}
