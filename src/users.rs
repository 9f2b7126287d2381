//! Users and password hashing. argon2id runs on the blocking pool behind a semaphore (each
//! hash holds 19 MiB), and an unknown user is checked against a dummy hash so that it costs
//! the same time as a wrong password.

use std::sync::Arc;

use std::cell::RefCell;

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};
use serde::Serialize;
use tokio::sync::Semaphore;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::db::entities::users::{self, Column as U, Entity as Users};
use crate::error::{Error, ErrorCode, Result};

/// The role that may call `/admin/*`.
pub const ADMIN_ROLE: &str = "admin";

/// A user as the API shows it: never the hash.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"id": "6f1c2d4e-8a7b-4c3d-9e2f-1a2b3c4d5e6f", "username": "alice", "roles": ["admin"], "disabled": false, "created_at": 1795434478}))]
pub struct User {
    #[schema(example = "6f1c2d4e-8a7b-4c3d-9e2f-1a2b3c4d5e6f")]
    pub id: String,
    #[schema(example = "alice")]
    pub username: String,
    #[schema(example = json!(["admin"]))]
    pub roles: Vec<String>,
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl User {
    fn from_row(r: &users::Model) -> Self {
        User {
            id: r.id.clone(),
            username: r.username.clone(),
            roles: serde_json::from_str(&r.roles).unwrap_or_default(),
            disabled: r.disabled,
            created_at: r.created_at,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ADMIN_ROLE)
    }
}

/// Usernames: 1–64 characters of letters, digits and `._@-`.
pub fn validate_username(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if name.is_empty() || name.len() > 64 || !ok_chars {
        return Err("username must be 1-64 characters of letters, digits and . _ @ -".into());
    }
    Ok(())
}

/// Passwords: 8–1024 bytes (NIST SP 800-63B minimum; the maximum bounds hashing cost).
pub fn validate_password(pw: &str) -> Result<(), String> {
    let n = pw.chars().count();
    if !(8..=1024).contains(&n) {
        return Err("password must be 8 to 1024 characters long".into());
    }
    Ok(())
}

/// Roles: 1–32 of them, each 1–32 characters of lowercase letters, digits and `_:-`.
pub fn validate_roles(roles: &[String]) -> Result<Vec<String>, String> {
    if roles.len() > 32 {
        return Err("at most 32 roles".into());
    }
    let mut out: Vec<String> = Vec::new();
    for r in roles {
        let ok = !r.is_empty()
            && r.len() <= 32
            && r.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_:-".contains(c));
        if !ok {
            return Err(format!("invalid role {r:?}: use 1-32 of a-z 0-9 _ : -"));
        }
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    Ok(out)
}

/// argon2id hashing with OWASP parameters, off the async runtime, on a fixed pool.
pub struct PasswordHasher {
    permits: Semaphore,
    pool: HashPool,
    dummy: String,
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of hashing threads. argon2 allocates 19 MiB per hash; on tokio's elastic
/// blocking pool every new thread kept its own malloc arena holding that memory (measured:
/// 2.6 GiB RSS under 64 concurrent logins). N fixed threads bound it to N × 19 MiB, and they
/// run at a lower CPU priority so that hashing yields the cores to request handling.
struct HashPool {
    tx: std::sync::mpsc::Sender<Job>,
}

impl HashPool {
    fn new(threads: usize) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("keymint-argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(Error::internal)?;
        }
        Ok(Self { tx })
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.tx
            .send(Box::new(move || {
                let _ = done.send(f());
            }))
            .map_err(|_| Error::internal("password hashing pool stopped"))?;
        result
            .await
            .map_err(|_| Error::internal("password hashing job lost"))
    }
}

/// Nice 10 for the calling thread (Linux applies setpriority to a single thread id).
#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: gettid and setpriority take and return plain integers; no memory is shared.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

fn params() -> Params {
    // OWASP: m=19 MiB, t=2, p=1. `Params::new` only fails on out-of-range values.
    Params::new(19 * 1024, 2, 1, None).unwrap_or_default()
}

thread_local! {
    /// argon2's working memory, kept per hashing thread and reused by every hash on it, so
    /// memory stays at one block set per thread at any login concurrency (allocating 19 MiB
    /// per hash left that much in each thread's malloc arena).
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Raw argon2id of `pw` with `salt` into `out`, on this thread's reused memory.
fn argon2id_into(params: Params, pw: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), String> {
    let need = params.block_count();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    BLOCKS.with(|b| {
        let mut blocks = b.borrow_mut();
        if blocks.len() < need {
            blocks.resize(need, Block::default());
        }
        argon
            .hash_password_into_with_memory(pw, salt, out, &mut blocks[..need])
            .map_err(|e| e.to_string())
    })
}

/// Hash a password with argon2id into a PHC string (blocking: ~tens of ms of CPU).
pub fn hash_blocking(pw: &[u8]) -> Result<String, String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut raw = [0u8; 64];
    let raw = salt.decode_b64(&mut raw).map_err(|e| e.to_string())?;
    let p = params();
    let mut out = [0u8; 32];
    argon2id_into(p.clone(), pw, raw, &mut out)?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        p.m_cost(),
        p.t_cost(),
        p.p_cost(),
        salt.as_str(),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
    ))
}

/// Check a password against an argon2id PHC string (blocking), in constant time.
pub fn verify_blocking(hash: &str, pw: &[u8]) -> bool {
    let Ok(h) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
        return false;
    };
    if h.algorithm.as_str() != "argon2id" || h.version.is_some_and(|v| v != 0x13) {
        return false;
    }
    let Ok(p) = Params::try_from(&h) else {
        return false;
    };
    let mut raw = [0u8; 64];
    let Ok(raw) = salt.decode_b64(&mut raw) else {
        return false;
    };
    let expected = expected.as_bytes();
    let mut out = vec![0u8; expected.len()];
    argon2id_into(p, pw, raw, &mut out).is_ok()
        && subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected).into()
}

impl PasswordHasher {
    pub fn new() -> Result<Self> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let pool = HashPool::new(cores)?;
        // On a hashing thread, whose memory is reused anyway, not on the caller's.
        let (tx, rx) = std::sync::mpsc::channel();
        pool.tx
            .send(Box::new(move || {
                let _ = tx.send(hash_blocking(b"keymint-dummy-password"));
            }))
            .map_err(|_| Error::internal("password hashing pool stopped"))?;
        let dummy = rx
            .recv()
            .map_err(|_| Error::internal("password hashing job lost"))?
            .map_err(Error::internal)?;
        Ok(Self {
            permits: Semaphore::new(cores),
            pool,
            dummy,
        })
    }

    /// Hash a new password.
    pub async fn hash(&self, pw: &str) -> Result<String> {
        let pw = Zeroizing::new(pw.as_bytes().to_vec());
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        self.pool
            .run(move || hash_blocking(&pw))
            .await?
            .map_err(Error::internal)
    }

    /// Check `pw` against `hash`, or against the dummy hash when there is no user, so both
    /// paths cost one argon2 verification.
    pub async fn verify(&self, hash: Option<&str>, pw: &str) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy).to_string();
        let pw = Zeroizing::new(pw.as_bytes().to_vec());
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let ok = self.pool.run(move || verify_blocking(&hash, &pw)).await?;
        Ok(known && ok)
    }
}

/// User storage.
#[derive(Clone)]
pub struct UserStore {
    db: DatabaseConnection,
    hasher: Arc<PasswordHasher>,
    /// Users by id for the bearer hot path (`/auth/me`, the admin check): a 1 s TTL bounds
    /// how stale another instance's change can be here; this instance's own changes
    /// invalidate at once. Absent users are not cached.
    by_id: moka::sync::Cache<String, User>,
}

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
        Self { db, hasher, by_id }
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Create a user; `CONFLICT` when the name is taken.
    pub async fn create(
        &self,
        username: &str,
        password: &str,
        roles: &[String],
        now: i64,
    ) -> Result<User> {
        validate_username(username).map_err(Error::validation)?;
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
        let user = Users::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .map(|r| User::from_row(&r));
        if let Some(u) = &user {
            self.by_id.insert(id.to_string(), u.clone());
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
            txn.execute_unprepared("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
                .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rules() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("a b").is_err());
        assert!(validate_username("../etc").is_err());
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
        assert_eq!(
            validate_roles(&["admin".into(), "admin".into()]).unwrap(),
            vec!["admin".to_string()]
        );
        assert!(validate_roles(&["Admin".into()]).is_err());
    }

    #[tokio::test]
    async fn unknown_user_never_verifies_but_costs_a_verification() {
        let h = PasswordHasher::new().unwrap();
        let hash = h.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify(Some(&hash), "correct horse").await.unwrap());
        assert!(!h.verify(Some(&hash), "wrong horse").await.unwrap());
        assert!(!h.verify(None, "keymint-dummy-password").await.unwrap());
    }
}
