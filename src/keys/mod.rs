//! The key manager: RSA signing keys per purpose, their lifecycle
//! (`next → active → retired → removed`, or `revoked`), their encrypted storage, and the
//! in-memory [`KeyRing`] that signing, verification and the JWKS read without touching the
//! database. The ring is rebuilt and swapped atomically whenever the key table changes.
//!
//! Architecture invariant: RSA generation runs on the blocking pool and never inside a
//! database transaction; the database (partial unique indexes) guarantees at most one
//! `active` and one `next` key per purpose.

pub mod kek;
pub mod material;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use jsonwebtoken::DecodingKey;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::db::entities::signing_keys::{self, Column as K, Entity as Keys};
use crate::error::{Error, ErrorCode, Result};
use kek::Kek;
use material::KeyMaterial;

/// What a key signs. Access keys are published; refresh keys never are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Access,
    Refresh,
}

impl Purpose {
    pub const ALL: [Purpose; 2] = [Purpose::Access, Purpose::Refresh];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Access => "access",
            Purpose::Refresh => "refresh",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access" => Some(Purpose::Access),
            "refresh" => Some(Purpose::Refresh),
            _ => None,
        }
    }
}

/// Where a key is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not yet signing.
    Next,
    /// The one key of its purpose that signs.
    Active,
    /// No longer signs; still verifies until every token it signed has expired.
    Retired,
    /// Compromised: unpublished and refused at once.
    Revoked,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "next" => Some(KeyState::Next),
            "active" => Some(KeyState::Active),
            "retired" => Some(KeyState::Retired),
            "revoked" => Some(KeyState::Revoked),
            _ => None,
        }
    }
}

/// Lifetimes the key manager needs to know when a retired key may go.
#[derive(Clone, Copy, Debug)]
pub struct KeyPolicy {
    pub bits: usize,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
    pub leeway: i64,
}

impl KeyPolicy {
    /// A key retired at `retired_at` verifies until every token it signed has expired.
    pub fn retired_until(&self, purpose: Purpose, retired_at: i64) -> i64 {
        let ttl = match purpose {
            Purpose::Access => self.access_ttl,
            Purpose::Refresh => self.refresh_ttl,
        };
        retired_at + ttl + self.leeway
    }
}

/// A key that signs: its kid and the parsed key pair (parsed once, not per signature).
pub struct Signer {
    pub kid: String,
    pair: RsaKeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("pair", &"<hidden>")
            .finish()
    }
}

impl Signer {
    /// Parse a PKCS#8 DER private key once; signing then reuses the parsed key.
    pub fn from_pkcs8(kid: String, der: &[u8]) -> Result<Self, String> {
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| format!("key {kid} rejected: {e}"))?;
        Ok(Self { kid, pair })
    }

    /// RS256 (RSASSA-PKCS1-v1_5 with SHA-256) through aws-lc, which is constant-time and
    /// blinded, unlike the `rsa` crate's own private-key operations.
    pub fn sign(&self, rng: &SystemRandom, msg: &[u8]) -> Result<Vec<u8>, String> {
        let mut sig = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, rng, msg, &mut sig)
            .map_err(|_| "rsa sign failed".to_string())?;
        Ok(sig)
    }
}

/// A key that verifies, with the last moment it may.
pub struct Verifier {
    pub kid: String,
    pub purpose: Purpose,
    pub state: KeyState,
    pub key: DecodingKey,
    pub expires_at: Option<i64>,
}

/// An immutable snapshot of every usable key, swapped whole when keys change.
pub struct KeyRing {
    access_signer: Option<Arc<Signer>>,
    refresh_signer: Option<Arc<Signer>>,
    verifiers: HashMap<String, Verifier>,
    jwks: Vec<u8>,
    etag: String,
    fingerprint: String,
    pub rng: SystemRandom,
}

impl KeyRing {
    /// The active key of `purpose`, if the ring has one.
    pub fn signer(&self, purpose: Purpose) -> Option<&Arc<Signer>> {
        match purpose {
            Purpose::Access => self.access_signer.as_ref(),
            Purpose::Refresh => self.refresh_signer.as_ref(),
        }
    }

    /// The key named `kid` if it verifies tokens of `purpose` at `now`.
    pub fn verifier(&self, kid: &str, purpose: Purpose, now: i64) -> Option<&Verifier> {
        self.verifiers
            .get(kid)
            .filter(|v| v.purpose == purpose && v.expires_at.is_none_or(|exp| exp > now))
    }

    /// The rendered JWKS document and its ETag.
    pub fn jwks(&self) -> (&[u8], &str) {
        (&self.jwks, &self.etag)
    }

    /// A ring over in-memory keys, for fuzzing, benches and tests of `tokens` without a
    /// database. Each entry is a key, its purpose and its state; no JWKS is rendered.
    pub fn from_keys(keys: &[(&KeyMaterial, Purpose, KeyState)]) -> Result<KeyRing, String> {
        let mut ring = empty_ring();
        for (m, purpose, state) in keys {
            if *state == KeyState::Active {
                let signer = Some(Arc::new(Signer::from_pkcs8(m.kid.clone(), &m.pkcs8_der)?));
                match purpose {
                    Purpose::Access => ring.access_signer = signer,
                    Purpose::Refresh => ring.refresh_signer = signer,
                }
            }
            let key = DecodingKey::from_rsa_components(&m.n, &m.e).map_err(|e| e.to_string())?;
            let v = Verifier {
                kid: m.kid.clone(),
                purpose: *purpose,
                state: *state,
                key,
                expires_at: None,
            };
            ring.verifiers.insert(m.kid.clone(), v);
        }
        Ok(ring)
    }

    /// The kids published in the JWKS.
    pub fn published_kids(&self) -> Vec<String> {
        let mut kids: Vec<_> = self
            .verifiers
            .values()
            .filter(|v| v.purpose == Purpose::Access)
            .map(|v| v.kid.clone())
            .collect();
        kids.sort();
        kids
    }
}

/// Public description of a key for `GET /admin/keys` and `keymint keys list`.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"kid": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "purpose": "access", "state": "retired", "bits": 2048, "created_at": 1794829678, "activated_at": 1795434478, "retired_at": 1796039278, "revoked_at": null, "expires_at": 1796040208}))]
pub struct KeyInfo {
    pub kid: String,
    pub purpose: Purpose,
    pub state: KeyState,
    pub bits: i32,
    /// Unix seconds.
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// When a retired key stops verifying and may be removed.
    pub expires_at: Option<i64>,
}

/// The active and next kid of one purpose after a change.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ActiveAndNext {
    pub active: String,
    pub next: String,
}

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

fn empty_ring() -> KeyRing {
    KeyRing {
        access_signer: None,
        refresh_signer: None,
        verifiers: HashMap::new(),
        jwks: br#"{"keys":[]}"#.to_vec(),
        etag: String::new(),
        fingerprint: String::new(),
        rng: SystemRandom::new(),
    }
}

/// Generate a key on the blocking pool.
pub async fn generate(bits: usize) -> Result<KeyMaterial> {
    tokio::task::spawn_blocking(move || material::generate(bits))
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)
}

/// One public key in JWKS form (RFC 7517).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    #[schema(example = "RSA")]
    pub kty: String,
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    pub use_: String,
    #[schema(example = "RS256")]
    pub alg: String,
    /// RFC 7638 thumbprint of the key.
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Public exponent, base64url.
    #[schema(example = "AQAB")]
    pub e: String,
}

impl Jwk {
    fn new(r: &signing_keys::Model) -> Self {
        Jwk {
            kty: "RSA".into(),
            use_: "sig".into(),
            alg: "RS256".into(),
            kid: r.kid.clone(),
            n: r.n.clone(),
            e: r.e.clone(),
        }
    }
}

/// The JWKS document.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw", "e": "AQAB"}]}))]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}
