//! Access tokens whose signature and claims already verified, by the SHA-256 of the whole
//! token, so a client presenting the same token again costs a hash and a lookup instead of an
//! RSA verification and a JSON parse (the same idea as Envoy's `jwt_cache_config`).
//!
//! What a hit still checks, every time: the signing key is still in the ring for access tokens
//! at `now` (a revoked or expired key ends its tokens at once), the audience asked for, and the
//! token's `nbf`/`exp` against the caller's clock. Revocation is the caller's check, as on a
//! miss. Only tokens that verified enter, so garbage cannot fill it; it holds at most
//! `CAPACITY` entries (a few MiB), and a full shard drops its expired entries, then all of them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::AccessClaims;

const SHARDS: usize = 16;
/// Entries in all; each is the claims (a few hundred bytes) and a 32-byte digest.
pub const CAPACITY: usize = 16 * 1024;

struct Entry {
    kid: Arc<str>,
    claims: AccessClaims,
}

type Digest = [u8; 32];

pub struct VerifiedCache {
    shards: [RwLock<HashMap<Digest, Entry>>; SHARDS],
}

impl Default for VerifiedCache {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| RwLock::new(HashMap::new())),
        }
    }
}

/// A token's name in the cache: SHA-256, so two tokens share an entry only if they are equal.
pub fn digest(token: &str) -> Digest {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl VerifiedCache {
    fn shard(&self, d: &Digest) -> &RwLock<HashMap<Digest, Entry>> {
        &self.shards[usize::from(d[0]) % SHARDS]
    }

    /// The kid and claims of a token verified before.
    pub fn get(&self, d: &Digest) -> Option<(Arc<str>, AccessClaims)> {
        let shard = self.shard(d).read().unwrap_or_else(|p| p.into_inner());
        shard.get(d).map(|e| (e.kid.clone(), e.claims.clone()))
    }

    pub fn insert(&self, d: Digest, kid: &str, claims: &AccessClaims, now: i64) {
        let mut shard = self.shard(&d).write().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= CAPACITY / SHARDS {
            shard.retain(|_, e| e.claims.exp > now);
            if shard.len() >= CAPACITY / SHARDS {
                shard.clear();
            }
        }
        let entry = Entry {
            kid: kid.into(),
            claims: claims.clone(),
        };
        shard.insert(d, entry);
    }

    /// Forget one token (it expired).
    pub fn remove(&self, d: &Digest) {
        self.shard(d)
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(d);
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
