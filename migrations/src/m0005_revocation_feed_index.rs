//! The revocation feed (`GET /oauth/revocations`, polled every second by every relying party
//! and every instance) reads Postgres rows in `(txid, id)` order after a keyset position: one
//! index serves both the order and the position.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared("CREATE INDEX revocations_txid_id ON revocations (txid, id)")
                .await?;
            db.execute_unprepared("DROP INDEX revocations_txid").await?;
        }
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "keymint migrations are forward-only".into(),
        ))
    }
}
