//! sea-orm entities, one module per table. Rows, not API types: HTTP bodies live in `http`.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod users {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub username: String,
        pub password_hash: String,
        /// JSON array of role names.
        pub roles: String,
        pub disabled: bool,
        pub created_at: i64,
        pub updated_at: i64,
        pub name: Option<String>,
        pub email: Option<String>,
    }
    no_relations!();
}

pub mod signing_keys {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signing_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kid: String,
        pub purpose: String,
        pub state: String,
        pub bits: i32,
        pub n: String,
        pub e: String,
        /// AES-256-GCM(nonce || ciphertext) of the PKCS#8 DER private key; empty when the
        /// key is held in a PKCS#11 token.
        pub private_key: Vec<u8>,
        pub kek_id: String,
        /// `local` or `pkcs11`: where the private key is held.
        pub backend: String,
        pub created_at: i64,
        pub activated_at: Option<i64>,
        pub retired_at: Option<i64>,
        pub revoked_at: Option<i64>,
        pub expires_at: Option<i64>,
    }
    no_relations!();

    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SigningKey")
                .field("kid", &self.kid)
                .field("purpose", &self.purpose)
                .field("state", &self.state)
                .field("private_key", &"<hidden>")
                .finish_non_exhaustive()
        }
    }
}

pub mod refresh_families {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_families")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: Option<String>,
        pub client_id: Option<String>,
        pub scope: String,
        pub audience: String,
        pub created_at: i64,
        pub expires_at: i64,
        pub revoked_at: Option<i64>,
        pub revoked_reason: Option<String>,
        /// The browser (SSO) session that started this family, if any.
        pub sso_id: Option<String>,
    }
    no_relations!();
}

pub mod refresh_tokens {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub jti: String,
        pub family_id: String,
        pub issued_at: i64,
        pub expires_at: i64,
        pub used_at: Option<i64>,
        pub replaced_by: Option<String>,
        pub revoked_at: Option<i64>,
        /// JSON of the access claims issued with this token (reuse grace re-signs them).
        pub access_claims: Option<String>,
    }
    no_relations!();
}

pub mod revocations {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "revocations")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// `jti` (one access token) or `sid` (every access token of a refresh family).
        pub kind: String,
        pub value: String,
        pub expires_at: i64,
        /// The writer's clock: for people reading the table, never for synchronisation.
        pub created_at: i64,
        pub reason: String,
        /// Postgres: the writing transaction's id (set by the database); SQLite: empty.
        #[sea_orm(nullable)]
        pub txid: Option<i64>,
    }
    no_relations!();
}

pub mod clients {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clients")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub client_id: String,
        pub name: String,
        /// Hex SHA-256 of the secret; the secret itself is never stored.
        pub secret_hash: String,
        pub grant_types: String,
        pub scopes: String,
        pub audience: Option<String>,
        pub created_at: i64,
        /// JSON arrays of exact-match URIs.
        pub redirect_uris: String,
        pub post_logout_redirect_uris: String,
        /// No secret: authentication method `none` (PKCE binds its codes).
        pub public: bool,
        pub consent: bool,
    }
    no_relations!();
}

pub mod sso_sessions {
    use sea_orm::entity::prelude::*;

    /// A browser sign-in (`km_sso`). The cookie holds a 256-bit secret stored only as its
    /// SHA-256; `id` is the public name (the ID token's `sid`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sso_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub secret_hash: String,
        pub user_id: String,
        pub auth_time: i64,
        pub created_at: i64,
        pub expires_at: i64,
        pub ended_at: Option<i64>,
    }
    no_relations!();
}

pub mod auth_codes {
    use sea_orm::entity::prelude::*;

    /// An authorization code, stored as its SHA-256, with everything it is bound to.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "auth_codes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code_hash: String,
        pub client_id: String,
        pub redirect_uri: String,
        pub code_challenge: String,
        pub nonce: Option<String>,
        pub scope: String,
        pub user_id: String,
        pub auth_time: i64,
        pub sso_id: String,
        pub created_at: i64,
        pub expires_at: i64,
        pub used_at: Option<i64>,
        /// The refresh family the first use started (revoked if the code is used again).
        pub family_id: Option<String>,
        pub reused_at: Option<i64>,
    }
    no_relations!();
}

pub mod consents {
    use sea_orm::entity::prelude::*;

    /// A user's consent to a client for one exact scope set (space-joined, sorted).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub client_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub scope: String,
        pub created_at: i64,
    }
    no_relations!();
}

pub mod audit_events {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub at: i64,
        pub kind: String,
        pub outcome: String,
        pub actor: Option<String>,
        pub subject: Option<String>,
        pub ip: Option<String>,
        /// JSON object with event-specific fields; never a secret.
        pub detail: String,
        /// How many attempts this record stands for (aggregated failures).
        pub count: i64,
        /// Aggregation key of a repeated event; `NULL` for ordinary events.
        pub dedup: Option<String>,
    }
    no_relations!();
}

pub mod job_runs {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "job_runs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub job: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub tick: i64,
        pub instance: String,
        pub started_at: i64,
    }
    no_relations!();
}

pub mod login_limits {
    use sea_orm::entity::prelude::*;

    /// Throttling state of one username or client address, shared by every instance and
    /// changed only inside a transaction that locks it first (`ratelimit::LoginLimiter::swap`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "login_limits")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub version: i64,
        /// JSON of `ratelimit::UserState` or `ratelimit::AddrState`.
        pub state: String,
        pub expires_at: i64,
    }
    no_relations!();
}
