//! User rows: lookups (by id cached for 1 s on the bearer hot path), creation, and changes
//! under the last-admin guard.

use std::sync::Arc;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};

use super::password::PasswordHasher;
use super::{
    Profile, User, validate_email, validate_name, validate_password, validate_roles,
    validate_username,
};
use crate::db::entities::users::{self, Column as U, Entity as Users};
use crate::error::{Error, ErrorCode, Result};

/// User storage.
#[derive(Clone)]
pub struct UserStore {
    db: DatabaseConnection,
    hasher: Arc<PasswordHasher>,
    /// Users by id for the bearer hot path (`/auth/me`, the admin check): a 1 s TTL bounds
    /// how stale another instance's change can be here; this instance's own changes
    /// invalidate at once. Absent users are not cached.
    by_id: moka::sync::Cache<String, User>,
    /// The last row read of each user, served only while the database is unreachable
    /// (SPEC section 9), for at most `OUTAGE_GRACE` after it was read.
    known: moka::sync::Cache<String, User>,
}

/// How long a user (or client) read from the database may still be served from memory while
/// the database is unreachable. Nothing can change in the database meanwhile; a change made
/// just before the outage reached this instance within `USER_CACHE_TTL` if it was read since.
pub const OUTAGE_GRACE: std::time::Duration = std::time::Duration::from_secs(300);

/// How long a cached user row may serve requests.
const USER_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// A user row with its hash, for login.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

impl UserStore {
    pub fn new(db: DatabaseConnection, hasher: Arc<PasswordHasher>) -> Self {
        let by_id = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(USER_CACHE_TTL)
            .build();
        let known = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(OUTAGE_GRACE)
            .build();
        Self {
            db,
            hasher,
            by_id,
            known,
        }
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Create a user with no profile; `CONFLICT` when the name is taken.
    pub async fn create(
        &self,
        username: &str,
        password: &str,
        roles: &[String],
        now: i64,
    ) -> Result<User> {
        self.create_with(username, password, roles, Profile::default(), now)
            .await
    }

    /// Create a user; `CONFLICT` when the name is taken.
    pub async fn create_with(
        &self,
        username: &str,
        password: &str,
        roles: &[String],
        profile: Profile,
        now: i64,
    ) -> Result<User> {
        validate_username(username).map_err(Error::validation)?;
        let name = match profile.name.as_deref() {
            Some(n) => validate_name(n).map_err(Error::validation)?,
            None => None,
        };
        let email = match profile.email.as_deref() {
            Some(e) => validate_email(e).map_err(Error::validation)?,
            None => None,
        };
        validate_password(password).map_err(Error::validation)?;
        let roles = validate_roles(roles).map_err(Error::validation)?;
        let hash = self.hasher.hash(password).await?;
        let row = users::Model {
            id: uuid::Uuid::new_v4().to_string(),
            username: username.to_string(),
            password_hash: hash,
            roles: serde_json::to_string(&roles).map_err(Error::internal)?,
            disabled: false,
            created_at: now,
            updated_at: now,
            name,
            email,
        };
        let res = Users::insert(users::ActiveModel::from(row.clone()))
            .exec_without_returning(&self.db)
            .await;
        match res {
            Ok(_) => Ok(User::from_row(&row)),
            Err(e) if crate::db::is_unique_violation(&e) => Err(Error::new(
                ErrorCode::Conflict,
                format!("user {username:?} already exists"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn by_username(&self, username: &str) -> Result<Option<Credentials>> {
        let row = Users::find()
            .filter(U::Username.eq(username))
            .one(&self.db)
            .await?;
        Ok(row.map(|r| Credentials {
            user: User::from_row(&r),
            password_hash: r.password_hash,
        }))
    }

    pub async fn by_id(&self, id: &str) -> Result<Option<User>> {
        if let Some(u) = self.by_id.get(id) {
            return Ok(Some(u));
        }
        let user = match Users::find_by_id(id.to_string()).one(&self.db).await {
            Ok(row) => row.map(|r| User::from_row(&r)),
            Err(e) if crate::db::is_unavailable(&e) => match self.known.get(id) {
                Some(u) => return Ok(Some(u)),
                None => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        };
        match &user {
            Some(u) => {
                self.by_id.insert(id.to_string(), u.clone());
                self.known.insert(id.to_string(), u.clone());
            }
            None => self.known.invalidate(id),
        }
        Ok(user)
    }

    pub async fn list(&self) -> Result<Vec<User>> {
        let rows = Users::find()
            .order_by_asc(U::Username)
            .all(&self.db)
            .await?;
        Ok(rows.iter().map(User::from_row).collect())
    }

    pub async fn set_roles(&self, id: &str, roles: &[String], now: i64) -> Result<User> {
        let change = UserChange {
            roles: Some(roles.to_vec()),
            ..Default::default()
        };
        self.change(id, change, now).await
    }

    pub async fn set_disabled(&self, id: &str, disabled: bool, now: i64) -> Result<User> {
        let change = UserChange {
            disabled: Some(disabled),
            ..Default::default()
        };
        self.change(id, change, now).await
    }

    pub async fn set_password(&self, id: &str, password: &str, now: i64) -> Result<User> {
        let change = UserChange {
            password: Some(password.to_string()),
            ..Default::default()
        };
        self.change(id, change, now).await
    }

    /// Apply `change` at once (all or nothing). `CONFLICT` when it would leave no enabled
    /// admin; `NOT_FOUND` when there is no such user.
    pub async fn change(&self, id: &str, change: UserChange, now: i64) -> Result<User> {
        let mut cols: Vec<(U, sea_orm::Value)> = vec![(U::UpdatedAt, now.into())];
        if let Some(roles) = &change.roles {
            let roles = validate_roles(roles).map_err(Error::validation)?;
            let json = serde_json::to_string(&roles).map_err(Error::internal)?;
            cols.push((U::Roles, json.into()));
        }
        if let Some(pw) = &change.password {
            validate_password(pw).map_err(Error::validation)?;
            // Hash before the transaction: argon2 takes tens of milliseconds.
            cols.push((U::PasswordHash, self.hasher.hash(pw).await?.into()));
        }
        if let Some(d) = change.disabled {
            cols.push((U::Disabled, d.into()));
        }
        if let Some(n) = &change.name {
            cols.push((U::Name, validate_name(n).map_err(Error::validation)?.into()));
        }
        if let Some(e) = &change.email {
            cols.push((
                U::Email,
                validate_email(e).map_err(Error::validation)?.into(),
            ));
        }
        self.guarded(id, Op::Update(cols)).await?;
        self.by_id(id)
            .await?
            .ok_or_else(|| Error::not_found("user"))
    }

    /// Delete a user row; `CONFLICT` for the last enabled admin.
    pub async fn delete(&self, id: &str) -> Result<()> {
        self.guarded(id, Op::Delete).await
    }

    /// Run `op` on user `id` in a transaction that holds the users table's write lock and
    /// refuses to commit when it took away the last enabled admin. The lock serialises every
    /// such change (on SQLite the first statement is a write, which takes the database's
    /// write lock; on Postgres a self-conflicting table lock), so two admins disabling each
    /// other at once cannot both succeed: the second sees the first's result.
    async fn guarded(&self, id: &str, op: Op) -> Result<()> {
        let txn = self.db.begin().await?;
        if txn.get_database_backend() == DbBackend::Postgres {
            crate::db::lock_for_writes(&txn, "users").await?;
        } else {
            Users::update_many()
                .col_expr(U::UpdatedAt, Expr::col(U::UpdatedAt))
                .filter(U::Id.eq(id))
                .exec(&txn)
                .await?;
        }
        let before = Users::find_by_id(id.to_string())
            .one(&txn)
            .await?
            .map(|r| User::from_row(&r))
            .ok_or_else(|| Error::not_found("user"))?;
        match op {
            Op::Update(cols) => {
                let mut q = Users::update_many().filter(U::Id.eq(id));
                for (c, v) in cols {
                    q = q.col_expr(c, Expr::value(v));
                }
                q.exec(&txn).await?;
            }
            Op::Delete => {
                Users::delete_by_id(id.to_string()).exec(&txn).await?;
            }
        }
        if before.is_admin() && !before.disabled && count_admins(&txn).await? == 0 {
            return Err(Error::new(
                ErrorCode::Conflict,
                "this would leave no enabled admin",
            ));
        }
        txn.commit().await?;
        self.by_id.invalidate(id);
        self.known.invalidate(id);
        Ok(())
    }

    /// True when some enabled user holds the admin role.
    pub async fn admin_exists(&self) -> Result<bool> {
        Ok(count_admins(&self.db).await? > 0)
    }
}

/// A change to a user; absent fields stay as they are.
#[derive(Default)]
pub struct UserChange {
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
    pub password: Option<String>,
    /// A new display name; empty clears it.
    pub name: Option<String>,
    /// A new email; empty clears it.
    pub email: Option<String>,
}

enum Op {
    Update(Vec<(U, sea_orm::Value)>),
    Delete,
}

/// How many enabled users hold the admin role (on `db` or inside a transaction).
async fn count_admins(db: &impl ConnectionTrait) -> Result<usize> {
    let rows = Users::find()
        .filter(U::Disabled.eq(false))
        .filter(U::Roles.contains("\"admin\""))
        .all(db)
        .await?;
    Ok(rows.iter().filter(|r| User::from_row(r).is_admin()).count())
}
