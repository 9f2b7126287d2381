//! The key manager: RSA signing keys per purpose, their lifecycle
//! (`next → active → retired → removed`, or `revoked`), their encrypted storage, and the
//! in-memory [`KeyRing`] that signing, verification and the JWKS read without touching the
//! database. The ring is rebuilt and swapped atomically whenever the key table changes.
//!
//! Architecture invariant: RSA generation runs on the blocking pool and never inside a
//! database transaction; the database (partial unique indexes) guarantees at most one
//! `active` and one `next` key per purpose.

pub mod admin;
mod fresh;
pub mod hsm;
pub mod kek;
mod load;
pub mod material;
mod ring;
mod types;

use ring::empty_ring;
pub use ring::{KeyRing, Signer, Verifier};
pub use types::{ActiveAndNext, Backend, Jwk, Jwks, KeyInfo, KeyPolicy, KeyState, Purpose};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use crate::db::entities::signing_keys::{self, Column as K, Entity as Keys};
use crate::error::{Error, ErrorCode, Result};
use hsm::Hsm;
use kek::Kek;

/// Where new keys are made, and the token (when configured) holding `pkcs11` keys.
#[derive(Clone, Debug, Default)]
pub struct Signing {
    pub backend: Backend,
    pub hsm: Option<Arc<Hsm>>,
}

/// The key manager. Cheap to share behind an `Arc`.
pub struct KeyManager {
    db: DatabaseConnection,
    kek: Kek,
    policy: KeyPolicy,
    source: material::KeySource,
    signing: Signing,
    ring: RwLock<Arc<KeyRing>>,
    /// Parsed signers by kid, so a reload does not decrypt and parse keys again.
    signers: Mutex<HashMap<String, Arc<Signer>>>,
}

/// States whose keys verify tokens.
const VERIFYING: [&str; 3] = [NEXT, ACTIVE, RETIRED];
const NEXT: &str = KeyState::Next.as_str();
const ACTIVE: &str = KeyState::Active.as_str();
const RETIRED: &str = KeyState::Retired.as_str();
const REVOKED: &str = KeyState::Revoked.as_str();

impl KeyManager {
    /// Load keys, creating an active and a next key per purpose when missing.
    pub async fn start(
        db: DatabaseConnection,
        kek: Kek,
        policy: KeyPolicy,
        source: material::KeySource,
        signing: Signing,
        now: i64,
    ) -> Result<Self> {
        let km = Self {
            db,
            kek,
            policy,
            source,
            signing,
            ring: RwLock::new(Arc::new(empty_ring())),
            signers: Mutex::new(HashMap::new()),
        };
        km.ensure(now).await?;
        km.reload(now).await?;
        Ok(km)
    }

    pub fn policy(&self) -> KeyPolicy {
        self.policy
    }

    /// The current snapshot.
    pub fn ring(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Give every purpose an active and a next key. Safe to race with other instances: the
    /// unique indexes let one insert win and the loser simply reloads.
    pub async fn ensure(&self, now: i64) -> Result<()> {
        for purpose in Purpose::ALL {
            let rows = Keys::find()
                .filter(K::Purpose.eq(purpose.as_str()))
                .filter(K::State.is_in([ACTIVE, NEXT]))
                .all(&self.db)
                .await?;
            let has_active = rows.iter().any(|r| r.state == ACTIVE);
            let has_next = rows.iter().any(|r| r.state == NEXT);
            if !has_active {
                if has_next {
                    self.promote_next(purpose, now).await?;
                } else {
                    let m = self.new_key(purpose).await?;
                    self.insert(&m, purpose, KeyState::Active, now).await?;
                }
            }
            if !(has_next && has_active) {
                let m = self.new_key(purpose).await?;
                self.insert(&m, purpose, KeyState::Next, now).await?;
            }
        }
        Ok(())
    }

    async fn promote_next(&self, purpose: Purpose, now: i64) -> Result<()> {
        let res = Keys::update_many()
            .col_expr(K::State, Expr::value(ACTIVE))
            .col_expr(K::ActivatedAt, Expr::value(now))
            .filter(K::Purpose.eq(purpose.as_str()))
            .filter(K::State.eq(NEXT))
            .exec(&self.db)
            .await;
        match res {
            Err(e) if crate::db::is_unique_violation(&e) => Ok(()),
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    /// Rotate one purpose: next → active, active → retired, and a fresh next. The new key is
    /// generated before the transaction opens, so the database is never held during RSA work.
    pub async fn rotate(&self, purpose: Purpose, now: i64) -> Result<ActiveAndNext> {
        let fresh = self.new_key(purpose).await?;
        let fresh_row = self.row(&fresh, purpose, KeyState::Next, now)?;
        let p = purpose.as_str();
        let retired_until = self.policy.retired_until(purpose, now);
        let promoted = self
            .db
            .transaction::<_, String, Error>(|txn| {
                Box::pin(async move {
                    // Key changes run one after the other, each seeing the previous one's
                    // result, instead of racing into the unique indexes. Writes first: on
                    // SQLite that takes the write lock before any read.
                    crate::db::lock_for_writes(txn, "signing_keys").await?;
                    Keys::update_many()
                        .col_expr(K::State, Expr::value(RETIRED))
                        .col_expr(K::RetiredAt, Expr::value(now))
                        .col_expr(K::ExpiresAt, Expr::value(retired_until))
                        .filter(K::Purpose.eq(p))
                        .filter(K::State.eq(ACTIVE))
                        .exec(txn)
                        .await?;
                    let next = Keys::find()
                        .filter(K::Purpose.eq(p))
                        .filter(K::State.eq(NEXT))
                        .one(txn)
                        .await?
                        .ok_or_else(|| {
                            Error::new(ErrorCode::Conflict, format!("no next {p} key to promote"))
                        })?;
                    Keys::update_many()
                        .col_expr(K::State, Expr::value(ACTIVE))
                        .col_expr(K::ActivatedAt, Expr::value(now))
                        .filter(K::Kid.eq(next.kid.clone()))
                        .exec(txn)
                        .await?;
                    Keys::insert(fresh_row).exec_without_returning(txn).await?;
                    Ok(next.kid)
                })
            })
            .await;
        let promoted = match promoted {
            Ok(kid) => kid,
            Err(e) => {
                let e: Error = e.into();
                self.discard_unless_unknown(&fresh, &e).await;
                return Err(e);
            }
        };
        let next = fresh.kid().to_string();
        tracing::info!(purpose = p, active = %promoted, next = %next, "rotated signing keys");
        // Committed: the rotation happened. A failed reload only delays the ring to the next sync.
        if let Err(e) = self.reload(now).await {
            tracing::warn!("rotated, but reloading the ring failed (next sync retries): {e}");
        }
        Ok(ActiveAndNext {
            active: promoted,
            next,
        })
    }

    /// Revoke a compromised key: it leaves the JWKS and stops verifying at once. Revoking the
    /// active key promotes the next one; revoking either generates a fresh next.
    pub async fn revoke(&self, kid: &str, now: i64) -> Result<KeyInfo> {
        let row = Keys::find_by_id(kid.to_string())
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("key"))?;
        let state =
            KeyState::parse(&row.state).ok_or_else(|| Error::internal("unknown key state"))?;
        let purpose =
            Purpose::parse(&row.purpose).ok_or_else(|| Error::internal("unknown key purpose"))?;
        if state == KeyState::Revoked {
            return Ok(info(row));
        }
        let fresh = match state {
            KeyState::Active | KeyState::Next => Some(self.new_key(purpose).await?),
            _ => None,
        };
        let fresh_row = match &fresh {
            Some(f) => Some(self.row(f, purpose, KeyState::Next, now)?),
            None => None,
        };
        let kid_owned = kid.to_string();
        let prev = row.state.clone();
        let res = self
            .db
            .transaction::<_, (), Error>(|txn| {
                Box::pin(async move {
                    crate::db::lock_for_writes(txn, "signing_keys").await?;
                    let res = Keys::update_many()
                        .col_expr(K::State, Expr::value(REVOKED))
                        .col_expr(K::RevokedAt, Expr::value(now))
                        .filter(K::Kid.eq(kid_owned))
                        .filter(K::State.eq(prev))
                        .exec(txn)
                        .await?;
                    if res.rows_affected != 1 {
                        return Err(Error::new(
                            ErrorCode::Conflict,
                            "the key changed state meanwhile; retry",
                        ));
                    }
                    if state == KeyState::Active {
                        Keys::update_many()
                            .col_expr(K::State, Expr::value(ACTIVE))
                            .col_expr(K::ActivatedAt, Expr::value(now))
                            .filter(K::Purpose.eq(purpose.as_str()))
                            .filter(K::State.eq(NEXT))
                            .exec(txn)
                            .await?;
                    }
                    if let Some(row) = fresh_row {
                        Keys::insert(row).exec_without_returning(txn).await?;
                    }
                    Ok(())
                })
            })
            .await;
        if let Err(e) = res {
            let e: Error = e.into();
            if let Some(f) = &fresh {
                self.discard_unless_unknown(f, &e).await;
            }
            return Err(e);
        }
        tracing::warn!(
            kid,
            purpose = purpose.as_str(),
            was = state.as_str(),
            "signing key revoked"
        );
        // A revoked active key with no next left the purpose without a signer: repair now.
        self.ensure(now).await?;
        self.reload(now).await?;
        let row = Keys::find_by_id(kid.to_string())
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("key"))?;
        Ok(info(row))
    }

    /// Every key, newest first.
    pub async fn list(&self) -> Result<Vec<KeyInfo>> {
        let rows = Keys::find()
            .order_by_desc(K::CreatedAt)
            .order_by_asc(K::Kid)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(info).collect())
    }

    /// The public components of one key (for export).
    pub async fn public(&self, kid: &str) -> Result<(KeyInfo, Jwk)> {
        let row = Keys::find_by_id(kid.to_string())
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("key"))?;
        let jwk = Jwk::new(&row);
        Ok((info(row), jwk))
    }

    /// The active and next kid of `purpose`, from the current ring's view of the database.
    pub async fn active_and_next(&self, purpose: Purpose) -> Result<ActiveAndNext> {
        let rows = Keys::find()
            .filter(K::Purpose.eq(purpose.as_str()))
            .filter(K::State.is_in([ACTIVE, NEXT]))
            .all(&self.db)
            .await?;
        let pick = |s: &str| {
            rows.iter()
                .find(|r| r.state == s)
                .map(|r| r.kid.clone())
                .unwrap_or_default()
        };
        Ok(ActiveAndNext {
            active: pick(ACTIVE),
            next: pick(NEXT),
        })
    }
}

fn info(r: signing_keys::Model) -> KeyInfo {
    KeyInfo {
        purpose: Purpose::parse(&r.purpose).unwrap_or(Purpose::Access),
        state: KeyState::parse(&r.state).unwrap_or(KeyState::Revoked),
        backend: Backend::parse(&r.backend).unwrap_or_default(),
        kid: r.kid,
        bits: r.bits,
        created_at: r.created_at,
        activated_at: r.activated_at,
        retired_at: r.retired_at,
        revoked_at: r.revoked_at,
        expires_at: r.expires_at,
    }
}
