//! The key manager: RSA signing keys per purpose, their lifecycle
//! (`next → active → retired → removed`, or `revoked`), their encrypted storage, and the
//! in-memory [`KeyRing`] that signing, verification and the JWKS read without touching the
//! database. The ring is rebuilt and swapped atomically whenever the key table changes.
//!
//! Architecture invariant: RSA generation runs on the blocking pool and never inside a
//! database transaction; the database (partial unique indexes) guarantees at most one
//! `active` and one `next` key per purpose.

pub mod admin;
pub mod kek;
pub mod material;
mod ring;
mod types;

use ring::empty_ring;
pub use ring::{KeyRing, Signer, Verifier};
pub use types::{ActiveAndNext, Jwk, Jwks, KeyInfo, KeyPolicy, KeyState, Purpose};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine;
use jsonwebtoken::DecodingKey;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use sha2::{Digest, Sha256};

use crate::db::entities::signing_keys::{self, Column as K, Entity as Keys};
use crate::error::{Error, ErrorCode, Result};
use kek::Kek;
use material::KeyMaterial;

/// The key manager. Cheap to share behind an `Arc`.
pub struct KeyManager {
    db: DatabaseConnection,
    kek: Kek,
    policy: KeyPolicy,
    source: material::KeySource,
    ring: RwLock<Arc<KeyRing>>,
    /// Parsed signers by kid, so a reload does not decrypt and parse keys again.
    signers: Mutex<HashMap<String, Arc<Signer>>>,
}

const VERIFYING: [&str; 3] = ["next", "active", "retired"];

impl KeyManager {
    /// Load keys, creating an active and a next key per purpose when missing.
    pub async fn start(
        db: DatabaseConnection,
        kek: Kek,
        policy: KeyPolicy,
        source: material::KeySource,
        now: i64,
    ) -> Result<Self> {
        let km = Self {
            db,
            kek,
            policy,
            source,
            ring: RwLock::new(Arc::new(empty_ring())),
            signers: Mutex::new(HashMap::new()),
        };
        km.ensure(now).await?;
        km.reload(now).await?;
        Ok(km)
    }

    /// A new key pair from this manager's source, off the async runtime.
    async fn new_key(&self) -> Result<KeyMaterial> {
        let (source, bits) = (self.source.clone(), self.policy.bits);
        tokio::task::spawn_blocking(move || source.next_blocking(bits))
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)
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
                .filter(K::State.is_in(["active", "next"]))
                .all(&self.db)
                .await?;
            let has_active = rows.iter().any(|r| r.state == "active");
            let has_next = rows.iter().any(|r| r.state == "next");
            if !has_active {
                if has_next {
                    self.promote_next(purpose, now).await?;
                } else {
                    let m = self.new_key().await?;
                    self.insert(&m, purpose, KeyState::Active, now).await?;
                }
            }
            if !(has_next && has_active) {
                let m = self.new_key().await?;
                self.insert(&m, purpose, KeyState::Next, now).await?;
            }
        }
        Ok(())
    }

    async fn promote_next(&self, purpose: Purpose, now: i64) -> Result<()> {
        let res = Keys::update_many()
            .col_expr(K::State, Expr::value("active"))
            .col_expr(K::ActivatedAt, Expr::value(now))
            .filter(K::Purpose.eq(purpose.as_str()))
            .filter(K::State.eq("next"))
            .exec(&self.db)
            .await;
        match res {
            Err(e) if crate::db::is_unique_violation(&e) => Ok(()),
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    async fn insert(
        &self,
        m: &KeyMaterial,
        purpose: Purpose,
        state: KeyState,
        now: i64,
    ) -> Result<bool> {
        let res = Keys::insert(self.row(m, purpose, state, now)?)
            .exec_without_returning(&self.db)
            .await;
        match res {
            Ok(_) => {
                tracing::info!(kid = %m.kid, purpose = purpose.as_str(), state = state.as_str(), "signing key created");
                Ok(true)
            }
            Err(e) if crate::db::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn row(
        &self,
        m: &KeyMaterial,
        purpose: Purpose,
        state: KeyState,
        now: i64,
    ) -> Result<signing_keys::ActiveModel> {
        let sealed = self
            .kek
            .seal(&m.kid, &m.pkcs8_der)
            .map_err(Error::internal)?;
        Ok(signing_keys::ActiveModel {
            kid: Set(m.kid.clone()),
            purpose: Set(purpose.as_str().into()),
            state: Set(state.as_str().into()),
            bits: Set(m.bits as i32),
            n: Set(m.n.clone()),
            e: Set(m.e.clone()),
            private_key: Set(sealed),
            kek_id: Set(self.kek.id.clone()),
            created_at: Set(now),
            activated_at: Set((state == KeyState::Active).then_some(now)),
            retired_at: Set(None),
            revoked_at: Set(None),
            expires_at: Set(None),
        })
    }

    /// Re-read the key table and swap in a new ring if anything that matters changed
    /// (a state change, or a retired key reaching its expiry). Returns whether it swapped.
    pub async fn reload(&self, now: i64) -> Result<bool> {
        let rows = Keys::find()
            .filter(K::State.is_in(VERIFYING))
            .filter(
                sea_orm::Condition::any()
                    .add(K::ExpiresAt.is_null())
                    .add(K::ExpiresAt.gt(now)),
            )
            .order_by_asc(K::Kid)
            .all(&self.db)
            .await?;
        let fingerprint: String = rows
            .iter()
            .map(|r| format!("{}:{};", r.kid, r.state))
            .collect();
        if self.ring().fingerprint == fingerprint {
            return Ok(false);
        }
        let ring = self.build_ring(rows, fingerprint)?;
        let mut guard = match self.ring.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(ring);
        Ok(true)
    }

    fn build_ring(&self, rows: Vec<signing_keys::Model>, fingerprint: String) -> Result<KeyRing> {
        let mut ring = empty_ring();
        ring.fingerprint = fingerprint;
        let mut published = Vec::new();
        for row in rows {
            let (Some(purpose), Some(state)) =
                (Purpose::parse(&row.purpose), KeyState::parse(&row.state))
            else {
                tracing::warn!(kid = %row.kid, "skipping key with unknown purpose or state");
                continue;
            };
            if state == KeyState::Active {
                let signer = self.signer_for(&row)?;
                match purpose {
                    Purpose::Access => ring.access_signer = Some(signer),
                    Purpose::Refresh => ring.refresh_signer = Some(signer),
                }
            }
            let key = DecodingKey::from_rsa_components(&row.n, &row.e)
                .map_err(|e| Error::internal(format!("key {}: {e}", row.kid)))?;
            if purpose == Purpose::Access {
                published.push((state, row.retired_at, Jwk::new(&row)));
            }
            ring.verifiers.insert(
                row.kid.clone(),
                Verifier {
                    kid: row.kid,
                    purpose,
                    state,
                    key,
                    expires_at: row.expires_at,
                },
            );
        }
        // Active first, then the next key, then retired keys newest first.
        published.sort_by_key(|(state, retired_at, _)| {
            let rank = match state {
                KeyState::Active => 0,
                KeyState::Next => 1,
                _ => 2,
            };
            (rank, std::cmp::Reverse(*retired_at))
        });
        let doc = Jwks {
            keys: published.into_iter().map(|(_, _, k)| k).collect(),
        };
        ring.jwks = serde_json::to_vec(&doc).map_err(Error::internal)?;
        let digest = Sha256::digest(&ring.jwks);
        ring.etag = format!(
            "\"{}\"",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
        );
        let mut cache = self.signers.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|kid, _| ring.verifiers.contains_key(kid));
        Ok(ring)
    }

    fn signer_for(&self, row: &signing_keys::Model) -> Result<Arc<Signer>> {
        let mut cache = self.signers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = cache.get(&row.kid) {
            return Ok(s.clone());
        }
        if row.kek_id != self.kek.id {
            return Err(Error::internal(format!(
                "signing key {} is sealed under KEK {}, but the configured KEK is {}",
                row.kid, row.kek_id, self.kek.id
            )));
        }
        let der = self
            .kek
            .open(&row.kid, &row.private_key)
            .map_err(Error::internal)?;
        let signer = Arc::new(Signer::from_pkcs8(row.kid.clone(), &der).map_err(Error::internal)?);
        cache.insert(row.kid.clone(), signer.clone());
        Ok(signer)
    }

    /// Rotate one purpose: next → active, active → retired, and a fresh next. The new key is
    /// generated before the transaction opens, so the database is never held during RSA work.
    pub async fn rotate(&self, purpose: Purpose, now: i64) -> Result<ActiveAndNext> {
        let fresh = self.new_key().await?;
        let fresh_row = self.row(&fresh, purpose, KeyState::Next, now)?;
        let p = purpose.as_str();
        let retired_until = self.policy.retired_until(purpose, now);
        let promoted = self
            .db
            .transaction::<_, String, Error>(|txn| {
                Box::pin(async move {
                    // Writes first: on SQLite this takes the write lock before any read.
                    Keys::update_many()
                        .col_expr(K::State, Expr::value("retired"))
                        .col_expr(K::RetiredAt, Expr::value(now))
                        .col_expr(K::ExpiresAt, Expr::value(retired_until))
                        .filter(K::Purpose.eq(p))
                        .filter(K::State.eq("active"))
                        .exec(txn)
                        .await?;
                    let next = Keys::find()
                        .filter(K::Purpose.eq(p))
                        .filter(K::State.eq("next"))
                        .one(txn)
                        .await?
                        .ok_or_else(|| {
                            Error::new(ErrorCode::Conflict, format!("no next {p} key to promote"))
                        })?;
                    Keys::update_many()
                        .col_expr(K::State, Expr::value("active"))
                        .col_expr(K::ActivatedAt, Expr::value(now))
                        .filter(K::Kid.eq(next.kid.clone()))
                        .exec(txn)
                        .await?;
                    Keys::insert(fresh_row).exec_without_returning(txn).await?;
                    Ok(next.kid)
                })
            })
            .await?;
        tracing::info!(purpose = p, active = %promoted, next = %fresh.kid, "rotated signing keys");
        self.reload(now).await?;
        Ok(ActiveAndNext {
            active: promoted,
            next: fresh.kid,
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
        let fresh_row = match state {
            KeyState::Active | KeyState::Next => {
                let fresh = self.new_key().await?;
                Some(self.row(&fresh, purpose, KeyState::Next, now)?)
            }
            _ => None,
        };
        let kid_owned = kid.to_string();
        let prev = row.state.clone();
        self.db
            .transaction::<_, (), Error>(|txn| {
                Box::pin(async move {
                    let res = Keys::update_many()
                        .col_expr(K::State, Expr::value("revoked"))
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
                            .col_expr(K::State, Expr::value("active"))
                            .col_expr(K::ActivatedAt, Expr::value(now))
                            .filter(K::Purpose.eq(purpose.as_str()))
                            .filter(K::State.eq("next"))
                            .exec(txn)
                            .await?;
                    }
                    if let Some(row) = fresh_row {
                        Keys::insert(row).exec_without_returning(txn).await?;
                    }
                    Ok(())
                })
            })
            .await?;
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
            .filter(K::State.is_in(["active", "next"]))
            .all(&self.db)
            .await?;
        let pick = |s: &str| {
            rows.iter()
                .find(|r| r.state == s)
                .map(|r| r.kid.clone())
                .unwrap_or_default()
        };
        Ok(ActiveAndNext {
            active: pick("active"),
            next: pick("next"),
        })
    }
}

fn info(r: signing_keys::Model) -> KeyInfo {
    KeyInfo {
        purpose: Purpose::parse(&r.purpose).unwrap_or(Purpose::Access),
        state: KeyState::parse(&r.state).unwrap_or(KeyState::Revoked),
        kid: r.kid,
        bits: r.bits,
        created_at: r.created_at,
        activated_at: r.activated_at,
        retired_at: r.retired_at,
        revoked_at: r.revoked_at,
        expires_at: r.expires_at,
    }
}
