//! Revocations carry a position that no writer's clock or commit order can hide
//! (SPEC section 9). On Postgres, `txid` is the writing transaction's id: a follower that
//! remembers the oldest transaction still running when it last read (`pg_snapshot_xmin`) and
//! reads `txid >= that` next time sees every row, however late it commits. On SQLite the
//! `AUTOINCREMENT` id already is such a position (one writer at a time: ids commit in order),
//! and `txid` stays empty.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        match db.get_database_backend() {
            DatabaseBackend::Postgres => {
                db.execute_unprepared(
                    "ALTER TABLE revocations ADD COLUMN txid BIGINT NOT NULL \
                     DEFAULT (pg_current_xact_id()::text::bigint)",
                )
                .await?;
                db.execute_unprepared("CREATE INDEX revocations_txid ON revocations (txid)")
                    .await?;
            }
            _ => {
                db.execute_unprepared("ALTER TABLE revocations ADD COLUMN txid BIGINT NULL")
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "keymint migrations are forward-only".into(),
        ))
    }
}
