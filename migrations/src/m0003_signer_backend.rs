//! Signing keys held in a PKCS#11 token (SPEC section 10): each key records its backend.
//! Keys of the `pkcs11` backend store no private key (`private_key` is empty, `kek_id` too);
//! existing keys are `local`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Backend,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(SigningKeys::Table)
                .add_column(
                    ColumnDef::new(SigningKeys::Backend)
                        .string()
                        .not_null()
                        .default("local"),
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
