//! Making new key pairs with the configured backend and storing them: a `local` key sealed
//! with the KEK, a `pkcs11` key as its public half only. A key made but never stored (a lost
//! race, a failed transaction) has its token objects destroyed again.

use std::sync::Arc;

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::hsm::{Hsm, HsmKey};
use super::material::KeyMaterial;
use super::{Backend, KeyManager, KeyState, Purpose, RETIRED, REVOKED};
use crate::db::entities::signing_keys::{self, Column as K, Entity as Keys};
use crate::error::{Error, Result};

/// A key pair just made, not yet stored.
pub(super) enum Fresh {
    Local(KeyMaterial),
    Hsm(HsmKey),
}

impl Fresh {
    pub(super) fn kid(&self) -> &str {
        match self {
            Fresh::Local(m) => &m.kid,
            Fresh::Hsm(k) => &k.kid,
        }
    }
}

impl KeyManager {
    /// A new key pair for `purpose` from the configured backend, off the async runtime.
    pub(super) async fn new_key(&self, purpose: Purpose) -> Result<Fresh> {
        let bits = self.policy.bits;
        match self.signing.backend {
            Backend::Local => {
                let source = self.source.clone();
                tokio::task::spawn_blocking(move || source.next_blocking(bits).map(Fresh::Local))
                    .await
                    .map_err(Error::internal)?
                    .map_err(Error::internal)
            }
            Backend::Pkcs11 => {
                let hsm = self.hsm()?;
                tokio::task::spawn_blocking(move || hsm.generate(purpose, bits).map(Fresh::Hsm))
                    .await
                    .map_err(Error::internal)?
                    .map_err(Error::internal)
            }
        }
    }

    /// Whether this instance has a PKCS#11 token open.
    pub fn has_hsm(&self) -> bool {
        self.signing.hsm.is_some()
    }

    pub(super) fn hsm(&self) -> Result<Arc<Hsm>> {
        self.signing.hsm.clone().ok_or_else(|| {
            Error::internal(
                "a key is held in a PKCS#11 token, but KEYMINT_PKCS11_MODULE is not set",
            )
        })
    }

    /// `discard`, unless `e` leaves it unknown whether the key's row was committed (the
    /// database went away mid-commit): an orphan object is harmless, a row without its key
    /// is not.
    pub(super) async fn discard_unless_unknown(&self, fresh: &Fresh, e: &Error) {
        if e.code != crate::error::ErrorCode::ServiceUnavailable {
            self.discard(fresh).await;
        }
    }

    /// Destroy the token objects of a key that was made but not stored (a lost race, a
    /// failed transaction). Best effort: an orphan is never published nor used.
    pub(super) async fn discard(&self, fresh: &Fresh) {
        if let (Fresh::Hsm(k), Some(hsm)) = (fresh, self.signing.hsm.clone()) {
            let kid = k.kid.clone();
            let res = tokio::task::spawn_blocking(move || hsm.destroy(&kid)).await;
            if !matches!(res, Ok(Ok(_))) {
                tracing::warn!(kid = %k.kid, "could not destroy an unused PKCS#11 key");
            }
        }
    }

    /// Destroy the token objects of `pkcs11` keys that can never sign or verify again: retired
    /// keys past their expiry (cleanup deletes their rows next) and revoked keys. Returns how
    /// many objects went.
    pub async fn destroy_removed(&self, now: i64) -> Result<u64> {
        let rows = Keys::find()
            .filter(K::Backend.eq(Backend::Pkcs11.as_str()))
            .filter(
                sea_orm::Condition::any().add(K::State.eq(REVOKED)).add(
                    sea_orm::Condition::all()
                        .add(K::State.eq(RETIRED))
                        .add(K::ExpiresAt.lte(now)),
                ),
            )
            .all(&self.db)
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let hsm = self.hsm()?;
        let kids: Vec<String> = rows.into_iter().map(|r| r.kid).collect();
        let gone = tokio::task::spawn_blocking(move || -> std::result::Result<usize, String> {
            let mut gone = 0;
            for kid in kids {
                gone += hsm.destroy(&kid)?;
            }
            Ok(gone)
        })
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
        Ok(gone as u64)
    }

    pub(super) async fn insert(
        &self,
        fresh: &Fresh,
        purpose: Purpose,
        state: KeyState,
        now: i64,
    ) -> Result<bool> {
        let res = Keys::insert(self.row(fresh, purpose, state, now)?)
            .exec_without_returning(&self.db)
            .await;
        match res {
            Ok(_) => {
                tracing::info!(kid = %fresh.kid(), purpose = purpose.as_str(), state = state.as_str(), "signing key created");
                Ok(true)
            }
            Err(e) => {
                // A lost connection leaves the insert's fate unknown: keep the key then.
                if !crate::db::is_unavailable(&e) {
                    self.discard(fresh).await;
                }
                if crate::db::is_unique_violation(&e) {
                    Ok(false)
                } else {
                    Err(e.into())
                }
            }
        }
    }

    pub(super) fn row(
        &self,
        fresh: &Fresh,
        purpose: Purpose,
        state: KeyState,
        now: i64,
    ) -> Result<signing_keys::ActiveModel> {
        let (kid, n, e, bits, sealed, kek_id, backend) = match fresh {
            Fresh::Local(m) => {
                let sealed = self
                    .kek
                    .seal(&m.kid, &m.pkcs8_der)
                    .map_err(Error::internal)?;
                (
                    &m.kid,
                    &m.n,
                    &m.e,
                    m.bits,
                    sealed,
                    self.kek.id.clone(),
                    Backend::Local,
                )
            }
            // Nothing private is stored: the key stays in the token.
            Fresh::Hsm(k) => (
                &k.kid,
                &k.n,
                &k.e,
                k.bits,
                Vec::new(),
                String::new(),
                Backend::Pkcs11,
            ),
        };
        Ok(signing_keys::ActiveModel {
            kid: Set(kid.clone()),
            purpose: Set(purpose.as_str().into()),
            state: Set(state.as_str().into()),
            bits: Set(bits as i32),
            n: Set(n.clone()),
            e: Set(e.clone()),
            private_key: Set(sealed),
            kek_id: Set(kek_id),
            backend: Set(backend.as_str().into()),
            created_at: Set(now),
            activated_at: Set((state == KeyState::Active).then_some(now)),
            retired_at: Set(None),
            revoked_at: Set(None),
            expires_at: Set(None),
        })
    }
}
