//! Loading: reading the key table into a fresh [`KeyRing`] (signers parsed once and cached)
//! and swapping it in whole.

use std::sync::Arc;

use base64::Engine;
use jsonwebtoken::DecodingKey;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use sha2::{Digest, Sha256};

use super::*;
use crate::db::entities::signing_keys::{self, Column as K, Entity as Keys};
use crate::error::{Error, Result};

impl KeyManager {
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

    pub(super) fn build_ring(
        &self,
        rows: Vec<signing_keys::Model>,
        fingerprint: String,
    ) -> Result<KeyRing> {
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
        ring.jwks = serde_json::to_vec(&doc).map_err(Error::internal)?.into();
        let digest = Sha256::digest(&ring.jwks);
        ring.etag = format!(
            "\"{}\"",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
        );
        let mut cache = self.signers.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|kid, _| ring.verifiers.contains_key(kid));
        Ok(ring)
    }

    pub(super) fn signer_for(&self, row: &signing_keys::Model) -> Result<Arc<Signer>> {
        let mut cache = self.signers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = cache.get(&row.kid) {
            return Ok(s.clone());
        }
        if row.backend == Backend::Pkcs11.as_str() {
            let hsm = self.hsm()?;
            let key = hsm.signer(&row.kid).map_err(Error::internal)?;
            let signer = Arc::new(Signer::pkcs11(row.kid.clone(), key));
            cache.insert(row.kid.clone(), signer.clone());
            return Ok(signer);
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
}
