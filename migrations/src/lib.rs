//! keymint's schema, as sea-orm migrations shared by SQLite and Postgres.
//! Never edit a migration that has shipped: add a new one.

pub use sea_orm_migration::prelude::*;

mod m0001_initial;
mod m0002_abuse;
mod m0003_signer_backend;
mod m0004_revocation_positions;
mod m0005_revocation_feed_index;
mod m0006_oidc;

/// The ordered list of migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::Migration),
            Box::new(m0002_abuse::Migration),
            Box::new(m0003_signer_backend::Migration),
            Box::new(m0004_revocation_positions::Migration),
            Box::new(m0005_revocation_feed_index::Migration),
            Box::new(m0006_oidc::Migration),
        ]
    }
}
