//! Password hashing: argon2id with OWASP parameters (m=19 MiB, t=2, p=1) on a fixed pool of
//! low-priority threads, each reusing one block of argon2 memory. An unknown user is checked
//! against a dummy hash so that it costs the same time as a wrong password.

use std::cell::RefCell;

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::pool::WorkPool;

/// argon2id hashing with OWASP parameters, off the async runtime, on a fixed pool.
pub struct PasswordHasher {
    permits: Semaphore,
    /// argon2 allocates 19 MiB per hash; on tokio's elastic blocking pool every new thread kept
    /// its own malloc arena holding that memory (measured: 2.6 GiB RSS under 64 concurrent
    /// logins). One low-priority thread per core bounds it to cores × 19 MiB.
    pool: WorkPool,
}

/// What an unknown user's password is checked against: an argon2id hash with `params()`,
/// made once offline rather than at every start, where it would leave a hashing thread's
/// 19 MiB resident before any login (the unit test below checks it verifies and its cost).
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$3y0wXwMCN+ZUsPfQskB6/Q$zb6KUpfOTQ0mN4edIxNszgMweCXL91GRd1LpiRKdpBI";

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
        Ok(Self {
            permits: Semaphore::new(crate::pool::cores()),
            pool: WorkPool::per_core("argon2", true)?,
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
        let hash = hash.unwrap_or(DUMMY_HASH).to_string();
        let pw = Zeroizing::new(pw.as_bytes().to_vec());
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let ok = self.pool.run(move || verify_blocking(&hash, &pw)).await?;
        Ok(known && ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_user_never_verifies_but_costs_a_verification() {
        let h = PasswordHasher::new().unwrap();
        let hash = h.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify(Some(&hash), "correct horse").await.unwrap());
        assert!(!h.verify(Some(&hash), "wrong horse").await.unwrap());
        assert!(!h.verify(None, "keymint-dummy-password").await.unwrap());
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let p = params();
        let prefix = format!(
            "$argon2id$v=19$m={},t={},p={}$",
            p.m_cost(),
            p.t_cost(),
            p.p_cost()
        );
        assert!(DUMMY_HASH.starts_with(&prefix), "{DUMMY_HASH} vs {prefix}");
        assert!(verify_blocking(DUMMY_HASH, b"keymint-dummy-password"));
    }
}
