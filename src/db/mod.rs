//! Database access: connection setup for SQLite (WAL, busy timeout) and Postgres, migrations,
//! and the sea-orm entities. No business rules live here.

pub mod entities;

use std::path::Path;
use std::time::Duration;

use keymint_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, SqlErr};

/// Open a pool for `url`. For SQLite the parent directory is created, the file is created on
/// first use, and WAL plus a busy timeout let the CLI work while a server runs.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut url = url.to_string();
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite {
        let path = sqlite_path(&url).map(std::path::PathBuf::from);
        if let Some(parent) = path
            .as_deref()
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", parent.display())))?;
        }
        if !url.contains("mode=") {
            url.push_str(if url.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
    }
    let mut opts = ConnectOptions::new(url);
    // Postgres can be away: a request waits at most this long for a connection, then answers
    // 503 (SPEC section 9: within 2 s). SQLite is a local file: only contention waits on it.
    let wait = if is_sqlite {
        Duration::from_secs(10)
    } else {
        POSTGRES_WAIT
    };
    opts.sqlx_logging(false)
        .connect_timeout(wait)
        .acquire_timeout(wait);
    if is_sqlite {
        opts.max_connections(8)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    // A checkpoint truncates the WAL back to this, so a burst of writes does
                    // not leave a large file behind for good.
                    .pragma("journal_size_limit", (8 * 1024 * 1024).to_string())
            });
    } else {
        opts.max_connections(16).min_connections(1);
    }
    Database::connect(opts).await
}

/// How long a request waits for a Postgres connection before answering 503.
pub const POSTGRES_WAIT: Duration = Duration::from_millis(1500);

/// Apply every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

/// On Postgres, lock `table` against other writers until the transaction ends (a
/// self-conflicting lock that readers pass), so read-check-write transactions on it run one
/// after the other. On SQLite a write transaction already holds the one write lock from its
/// first write, so this does nothing there: callers start with a write.
pub async fn lock_for_writes(
    txn: &sea_orm::DatabaseTransaction,
    table: &'static str,
) -> Result<(), DbErr> {
    use sea_orm::ConnectionTrait;
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        txn.execute_unprepared(&format!("LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
            .await?;
    }
    Ok(())
}

/// True when `e` means the database cannot be reached right now (no connection within the
/// acquire timeout, a connection lost, the server shutting down or starting up), as opposed
/// to a failed statement. Such errors answer 503 with `Retry-After`, not 500.
pub fn is_unavailable(e: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    let sqlx = match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(s)) | DbErr::Query(RuntimeErr::SqlxError(s)) => s,
        _ => return false,
    };
    match sqlx.as_ref() {
        Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
        Sqlx::Tls(_) | Sqlx::Protocol(_) => true,
        // Postgres: connection exceptions (08…), shutdown and start-up (57P01–57P03).
        Sqlx::Database(d) => d.code().is_some_and(|c| {
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// True when `e` is a unique-constraint violation (a lost race, not a failure).
pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://data/keymint.db").as_deref(),
            Some("data/keymint.db")
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db?mode=rwc").as_deref(),
            Some("/tmp/x.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
