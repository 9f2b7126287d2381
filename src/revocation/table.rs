//! The in-memory denylist: every live revocation as a 128-bit keyed hash of (kind, value) and
//! its expiry, 24 bytes an entry in 16 shards, so a million revocations take ~50 MiB and a
//! check costs three short hashes and three probes, no allocation.
//!
//! A false positive needs two of the live entries' 128-bit SipHash values to collide with a
//! presented token's: with a per-process random key and 10^6 entries, about 10^-27 a check.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::RwLock;

use siphasher::sip128::{Hasher128, SipHasher13};

use super::Kind;

const SHARDS: usize = 16;

/// A revocation's name in memory.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key(u64, u64);

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        // Already uniformly distributed: the first half is the bucket hash.
        h.write_u64(self.0);
    }
}

/// Passes `Key`'s first half through: SipHash already mixed it.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type Shard = HashMap<Key, u32, BuildHasherDefault<Identity>>;

/// Revocations by key, with their expiry (Unix seconds, saturated to `u32`).
pub struct Table {
    secret: (u64, u64),
    shards: [RwLock<Shard>; SHARDS],
}

impl Table {
    pub fn new() -> Self {
        Table {
            secret: (rand::random(), rand::random()),
            shards: std::array::from_fn(|_| RwLock::new(Shard::default())),
        }
    }

    fn key(&self, kind: Kind, value: &str) -> Key {
        let mut h = SipHasher13::new_with_keys(self.secret.0, self.secret.1);
        h.write_u8(kind as u8);
        h.write(value.as_bytes());
        let out = h.finish128();
        Key(out.h1, out.h2)
    }

    fn shard(&self, k: Key) -> &RwLock<Shard> {
        &self.shards[(k.1 as usize) % SHARDS]
    }

    /// Remember `kind:value` until `expires_at` (the later expiry wins).
    pub fn insert(&self, kind: Kind, value: &str, expires_at: i64) {
        let k = self.key(kind, value);
        let exp = expires_at.clamp(0, i64::from(u32::MAX)) as u32;
        let mut shard = write(self.shard(k));
        let e = shard.entry(k).or_insert(exp);
        *e = (*e).max(exp);
    }

    pub fn contains(&self, kind: Kind, value: &str) -> bool {
        let k = self.key(kind, value);
        read(self.shard(k)).contains_key(&k)
    }

    /// Forget entries whose tokens expired before `before`; returns how many.
    pub fn purge(&self, before: i64) -> usize {
        let cut = before.clamp(0, i64::from(u32::MAX)) as u32;
        self.shards
            .iter()
            .map(|s| {
                let mut s = write(s);
                let n = s.len();
                s.retain(|_, exp| *exp >= cut);
                s.shrink_to_fit();
                n - s.len()
            })
            .sum()
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Table {
    fn default() -> Self {
        Self::new()
    }
}

fn read(l: &RwLock<Shard>) -> std::sync::RwLockReadGuard<'_, Shard> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write(l: &RwLock<Shard>) -> std::sync::RwLockWriteGuard<'_, Shard> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_values_are_distinct_and_expiry_purges() {
        let t = Table::new();
        t.insert(Kind::Jti, "a", 100);
        t.insert(Kind::Sid, "b", 200);
        assert!(t.contains(Kind::Jti, "a"));
        assert!(!t.contains(Kind::Sid, "a"), "same value, other kind");
        assert!(!t.contains(Kind::Jti, "b"));
        t.insert(Kind::Jti, "a", 50);
        assert_eq!(
            t.purge(101),
            1,
            "'a' kept its later expiry (100), which is past"
        );
        assert!(!t.contains(Kind::Jti, "a"));
        assert!(t.contains(Kind::Sid, "b"));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn entries_are_24_bytes() {
        assert_eq!(std::mem::size_of::<(Key, u32)>(), 24);
    }
}
