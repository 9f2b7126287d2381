//! The pure key ring: an immutable snapshot of the keys that sign and verify, with the
//! rendered JWKS. No database and no I/O: the key manager builds it, everything else reads it.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use jsonwebtoken::DecodingKey;

use super::material::KeyMaterial;
use super::types::{KeyState, Purpose};

/// A key that signs: its kid and where the private half is, parsed or found once, not per
/// signature.
pub struct Signer {
    pub kid: String,
    key: SignKey,
}

enum SignKey {
    /// Held in memory (`local` backend), opened from its sealed form.
    Local(RsaKeyPair),
    /// Held in a PKCS#11 token; signing happens there.
    Pkcs11(super::hsm::HsmSigner),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("backend", &self.backend())
            .finish()
    }
}

impl Signer {
    /// Parse a PKCS#8 DER private key once; signing then reuses the parsed key.
    pub fn from_pkcs8(kid: String, der: &[u8]) -> Result<Self, String> {
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| format!("key {kid} rejected: {e}"))?;
        Ok(Self {
            kid,
            key: SignKey::Local(pair),
        })
    }

    /// A key that signs inside a PKCS#11 token.
    pub fn pkcs11(kid: String, key: super::hsm::HsmSigner) -> Self {
        Self {
            kid,
            key: SignKey::Pkcs11(key),
        }
    }

    /// Where the private key is held.
    pub fn backend(&self) -> super::Backend {
        match self.key {
            SignKey::Local(_) => super::Backend::Local,
            SignKey::Pkcs11(_) => super::Backend::Pkcs11,
        }
    }

    /// RS256 (RSASSA-PKCS1-v1_5 with SHA-256): through aws-lc for local keys (constant-time and
    /// blinded, unlike the `rsa` crate's own private-key operations), or in the token.
    pub fn sign(&self, rng: &SystemRandom, msg: &[u8]) -> Result<Vec<u8>, String> {
        match &self.key {
            SignKey::Local(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, rng, msg, &mut sig)
                    .map_err(|_| "rsa sign failed".to_string())?;
                Ok(sig)
            }
            SignKey::Pkcs11(key) => key.sign(msg),
        }
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
    pub(super) access_signer: Option<Arc<Signer>>,
    pub(super) refresh_signer: Option<Arc<Signer>>,
    pub(super) verifiers: HashMap<String, Verifier>,
    /// Shared with every response (a reference count, not a copy).
    pub(super) jwks: bytes::Bytes,
    pub(super) etag: String,
    pub(super) fingerprint: String,
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
    pub fn jwks(&self) -> (&bytes::Bytes, &str) {
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

pub(super) fn empty_ring() -> KeyRing {
    KeyRing {
        access_signer: None,
        refresh_signer: None,
        verifiers: HashMap::new(),
        jwks: bytes::Bytes::from_static(br#"{"keys":[]}"#),
        etag: String::new(),
        fingerprint: String::new(),
        rng: SystemRandom::new(),
    }
}
