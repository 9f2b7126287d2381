//! The initial schema, designed for the whole SPEC: users, signing keys, refresh families and
//! tokens, revocations, OAuth clients, the audit log and the job-run guard table.
//! All times are Unix seconds (BIGINT) so both databases compare them the same way.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    PasswordHash,
    Roles,
    Disabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Purpose,
    State,
    Bits,
    N,
    E,
    PrivateKey,
    KekId,
    CreatedAt,
    ActivatedAt,
    RetiredAt,
    RevokedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum RefreshFamilies {
    Table,
    Id,
    UserId,
    ClientId,
    Scope,
    Audience,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    RevokedReason,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Jti,
    FamilyId,
    IssuedAt,
    ExpiresAt,
    UsedAt,
    ReplacedBy,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Revocations {
    Table,
    Id,
    Kind,
    Value,
    ExpiresAt,
    CreatedAt,
    Reason,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    ClientId,
    Name,
    SecretHash,
    GrantTypes,
    Scopes,
    Audience,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    Kind,
    Outcome,
    Actor,
    Subject,
    Ip,
    Detail,
}

#[derive(DeriveIden)]
enum JobRuns {
    Table,
    Job,
    Tick,
    Instance,
    StartedAt,
}

fn text(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).string().not_null().to_owned()
}
fn text_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).string().null().to_owned()
}
fn time(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).big_integer().not_null().to_owned()
}
fn time_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).big_integer().null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(text(Users::Id).primary_key())
                .col(text(Users::Username).unique_key())
                .col(text(Users::PasswordHash))
                .col(text(Users::Roles))
                .col(
                    ColumnDef::new(Users::Disabled)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .col(time(Users::CreatedAt))
                .col(time(Users::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(SigningKeys::Table)
                .col(text(SigningKeys::Kid).primary_key())
                .col(text(SigningKeys::Purpose))
                .col(text(SigningKeys::State))
                .col(ColumnDef::new(SigningKeys::Bits).integer().not_null())
                .col(text(SigningKeys::N))
                .col(text(SigningKeys::E))
                .col(ColumnDef::new(SigningKeys::PrivateKey).binary().not_null())
                .col(text(SigningKeys::KekId))
                .col(time(SigningKeys::CreatedAt))
                .col(time_null(SigningKeys::ActivatedAt))
                .col(time_null(SigningKeys::RetiredAt))
                .col(time_null(SigningKeys::RevokedAt))
                .col(time_null(SigningKeys::ExpiresAt))
                .to_owned(),
        )
        .await?;
        // Architecture invariant, enforced by the database: at most one active and one next
        // key per purpose, whatever any instance's code does. Partial unique indexes work the
        // same on SQLite and Postgres.
        let db = m.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (purpose) WHERE state = 'active'",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (purpose) WHERE state = 'next'",
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RefreshFamilies::Table)
                .col(text(RefreshFamilies::Id).primary_key())
                .col(text_null(RefreshFamilies::UserId))
                .col(text_null(RefreshFamilies::ClientId))
                .col(text(RefreshFamilies::Scope))
                .col(text(RefreshFamilies::Audience))
                .col(time(RefreshFamilies::CreatedAt))
                .col(time(RefreshFamilies::ExpiresAt))
                .col(time_null(RefreshFamilies::RevokedAt))
                .col(text_null(RefreshFamilies::RevokedReason))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("refresh_families_user")
                .table(RefreshFamilies::Table)
                .col(RefreshFamilies::UserId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("refresh_families_expires")
                .table(RefreshFamilies::Table)
                .col(RefreshFamilies::ExpiresAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RefreshTokens::Table)
                .col(text(RefreshTokens::Jti).primary_key())
                .col(text(RefreshTokens::FamilyId))
                .col(time(RefreshTokens::IssuedAt))
                .col(time(RefreshTokens::ExpiresAt))
                .col(time_null(RefreshTokens::UsedAt))
                .col(text_null(RefreshTokens::ReplacedBy))
                .col(time_null(RefreshTokens::RevokedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("refresh_tokens_family")
                .table(RefreshTokens::Table)
                .col(RefreshTokens::FamilyId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("refresh_tokens_expires")
                .table(RefreshTokens::Table)
                .col(RefreshTokens::ExpiresAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Revocations::Table)
                .col(
                    ColumnDef::new(Revocations::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(text(Revocations::Kind))
                .col(text(Revocations::Value))
                .col(time(Revocations::ExpiresAt))
                .col(time(Revocations::CreatedAt))
                .col(text(Revocations::Reason))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("revocations_kind_value")
                .table(Revocations::Table)
                .col(Revocations::Kind)
                .col(Revocations::Value)
                .unique()
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("revocations_created", Revocations::CreatedAt),
            ("revocations_expires", Revocations::ExpiresAt),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(Revocations::Table)
                    .col(col)
                    .to_owned(),
            )
            .await?;
        }

        m.create_table(
            Table::create()
                .table(Clients::Table)
                .col(text(Clients::ClientId).primary_key())
                .col(text(Clients::Name))
                .col(text(Clients::SecretHash))
                .col(text(Clients::GrantTypes))
                .col(text(Clients::Scopes))
                .col(text_null(Clients::Audience))
                .col(time(Clients::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditEvents::Table)
                .col(
                    ColumnDef::new(AuditEvents::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(time(AuditEvents::At))
                .col(text(AuditEvents::Kind))
                .col(text(AuditEvents::Outcome))
                .col(text_null(AuditEvents::Actor))
                .col(text_null(AuditEvents::Subject))
                .col(text_null(AuditEvents::Ip))
                .col(text(AuditEvents::Detail))
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("audit_events_at", AuditEvents::At),
            ("audit_events_kind", AuditEvents::Kind),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(AuditEvents::Table)
                    .col(col)
                    .to_owned(),
            )
            .await?;
        }

        // A scheduled job runs once per tick across every instance: the instance whose insert
        // of (job, tick) succeeds runs it; the others see a unique violation and skip.
        m.create_table(
            Table::create()
                .table(JobRuns::Table)
                .col(text(JobRuns::Job))
                .col(time(JobRuns::Tick))
                .col(text(JobRuns::Instance))
                .col(time(JobRuns::StartedAt))
                .primary_key(Index::create().col(JobRuns::Job).col(JobRuns::Tick))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "job_runs",
            "audit_events",
            "clients",
            "revocations",
            "refresh_tokens",
            "refresh_families",
            "signing_keys",
            "users",
        ] {
            m.get_connection()
                .execute_unprepared(&format!("DROP TABLE IF EXISTS {t}"))
                .await?;
        }
        Ok(())
    }
}
