//! Browser sign-in (SPEC section 7): users gain `name` and `email`; clients gain redirect
//! URIs, post-logout URIs, `public` and `consent`; server-side SSO sessions (`km_sso`),
//! authorization codes, remembered consents; and each refresh family records the SSO
//! session that started it, so RP-initiated logout can end exactly those.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Name,
    Email,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    RedirectUris,
    PostLogoutRedirectUris,
    Public,
    Consent,
}

#[derive(DeriveIden)]
enum RefreshFamilies {
    Table,
    SsoId,
}

#[derive(DeriveIden)]
enum SsoSessions {
    Table,
    Id,
    SecretHash,
    UserId,
    AuthTime,
    CreatedAt,
    ExpiresAt,
    EndedAt,
}

#[derive(DeriveIden)]
enum AuthCodes {
    Table,
    CodeHash,
    ClientId,
    RedirectUri,
    CodeChallenge,
    Nonce,
    Scope,
    UserId,
    AuthTime,
    SsoId,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    FamilyId,
    ReusedAt,
}

#[derive(DeriveIden)]
enum Consents {
    Table,
    UserId,
    ClientId,
    Scope,
    CreatedAt,
}

async fn add(m: &SchemaManager<'_>, table: impl IntoIden, col: ColumnDef) -> Result<(), DbErr> {
    // SQLite alters one column per statement.
    let mut col = col;
    m.alter_table(Table::alter().table(table).add_column(&mut col).to_owned())
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add(
            m,
            Users::Table,
            ColumnDef::new(Users::Name).string().null().to_owned(),
        )
        .await?;
        add(
            m,
            Users::Table,
            ColumnDef::new(Users::Email).string().null().to_owned(),
        )
        .await?;
        let json_list = |c: Clients| {
            ColumnDef::new(c)
                .string()
                .not_null()
                .default("[]")
                .to_owned()
        };
        add(m, Clients::Table, json_list(Clients::RedirectUris)).await?;
        add(
            m,
            Clients::Table,
            json_list(Clients::PostLogoutRedirectUris),
        )
        .await?;
        let flag = |c: Clients| {
            ColumnDef::new(c)
                .boolean()
                .not_null()
                .default(false)
                .to_owned()
        };
        add(m, Clients::Table, flag(Clients::Public)).await?;
        add(m, Clients::Table, flag(Clients::Consent)).await?;
        add(
            m,
            RefreshFamilies::Table,
            ColumnDef::new(RefreshFamilies::SsoId)
                .string()
                .null()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("refresh_families_sso")
                .table(RefreshFamilies::Table)
                .col(RefreshFamilies::SsoId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(SsoSessions::Table)
                .col(
                    ColumnDef::new(SsoSessions::Id)
                        .string()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(SsoSessions::SecretHash)
                        .string()
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(SsoSessions::UserId).string().not_null())
                .col(
                    ColumnDef::new(SsoSessions::AuthTime)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(SsoSessions::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(SsoSessions::ExpiresAt)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(SsoSessions::EndedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("sso_sessions_expires_at")
                .table(SsoSessions::Table)
                .col(SsoSessions::ExpiresAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("sso_sessions_user")
                .table(SsoSessions::Table)
                .col(SsoSessions::UserId)
                .to_owned(),
        )
        .await?;

        let text = |c: AuthCodes| ColumnDef::new(c).string().not_null().to_owned();
        let time = |c: AuthCodes| ColumnDef::new(c).big_integer().not_null().to_owned();
        m.create_table(
            Table::create()
                .table(AuthCodes::Table)
                .col(text(AuthCodes::CodeHash).primary_key())
                .col(text(AuthCodes::ClientId))
                .col(text(AuthCodes::RedirectUri))
                .col(text(AuthCodes::CodeChallenge))
                .col(ColumnDef::new(AuthCodes::Nonce).string().null())
                .col(text(AuthCodes::Scope))
                .col(text(AuthCodes::UserId))
                .col(time(AuthCodes::AuthTime))
                .col(text(AuthCodes::SsoId))
                .col(time(AuthCodes::CreatedAt))
                .col(time(AuthCodes::ExpiresAt))
                .col(ColumnDef::new(AuthCodes::UsedAt).big_integer().null())
                .col(ColumnDef::new(AuthCodes::FamilyId).string().null())
                .col(ColumnDef::new(AuthCodes::ReusedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("auth_codes_expires_at")
                .table(AuthCodes::Table)
                .col(AuthCodes::ExpiresAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Consents::Table)
                .col(ColumnDef::new(Consents::UserId).string().not_null())
                .col(ColumnDef::new(Consents::ClientId).string().not_null())
                .col(ColumnDef::new(Consents::Scope).string().not_null())
                .col(ColumnDef::new(Consents::CreatedAt).big_integer().not_null())
                .primary_key(
                    Index::create()
                        .col(Consents::UserId)
                        .col(Consents::ClientId)
                        .col(Consents::Scope),
                )
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
