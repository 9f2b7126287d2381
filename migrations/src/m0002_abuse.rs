//! Abuse resistance (SPEC section 6): login-throttling state shared by every instance,
//! aggregated audit records (`count`, deduplicated by `dedup`), and the access claims issued
//! with each refresh token so a retry within the reuse grace gets the very same pair.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LoginLimits {
    Table,
    Key,
    Version,
    State,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Count,
    Dedup,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    AccessClaims,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(LoginLimits::Table)
                .col(
                    ColumnDef::new(LoginLimits::Key)
                        .string()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(LoginLimits::Version)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(LoginLimits::State).string().not_null())
                .col(
                    ColumnDef::new(LoginLimits::ExpiresAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("login_limits_expires_at")
                .table(LoginLimits::Table)
                .col(LoginLimits::ExpiresAt)
                .to_owned(),
        )
        .await?;
        // SQLite alters one column per statement.
        m.alter_table(
            Table::alter()
                .table(AuditEvents::Table)
                .add_column(
                    ColumnDef::new(AuditEvents::Count)
                        .big_integer()
                        .not_null()
                        .default(1),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(AuditEvents::Table)
                .add_column(ColumnDef::new(AuditEvents::Dedup).string().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("audit_events_dedup")
                .table(AuditEvents::Table)
                .col(AuditEvents::Dedup)
                .unique()
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(RefreshTokens::Table)
                .add_column(ColumnDef::new(RefreshTokens::AccessClaims).string().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "keymint migrations are forward-only".into(),
        ))
    }
}
