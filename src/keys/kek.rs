//! The key-encryption key (KEK) and AES-256-GCM sealing of private keys at rest.
//! Each sealed blob is bound to its kid (AAD), and each row records the KEK id that sealed
//! it, so a wrong KEK is reported by name instead of as a decryption failure.

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Where the KEK came from; a file KEK with an https issuer earns a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KekSource {
    Env,
    File,
}

/// A 256-bit key-encryption key. `Debug` never prints the key.
pub struct Kek {
    key: Zeroizing<[u8; 32]>,
    /// Short public identifier of this KEK (a hash prefix), stored beside each sealed key.
    pub id: String,
    pub source: KekSource,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .field("key", &"<hidden>")
            .finish()
    }
}

const NONCE_LEN: usize = 12;

impl Kek {
    pub fn from_bytes(key: [u8; 32], source: KekSource) -> Self {
        let digest = Sha256::new()
            .chain_update(b"keymint-kek-id:")
            .chain_update(key)
            .finalize();
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            key: Zeroizing::new(key),
            id,
            source,
        }
    }

    /// A 256-bit key for `label`, derived from the KEK (HMAC-SHA-256), so every instance that
    /// shares the KEK shares it and no second secret needs distributing.
    pub fn derive(&self, label: &str) -> Zeroizing<[u8; 32]> {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.key[..]);
        let tag = aws_lc_rs::hmac::sign(&key, label.as_bytes());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Use `configured` when set; otherwise read `dir/kek`, creating it (0600, directory
    /// 0700) with 32 random bytes on first start. The file appears whole or not at all
    /// (written to a temporary file, then linked into place, which never replaces a `kek`
    /// that another process created meanwhile), and a `kek` readable by group or others is
    /// refused.
    pub fn load(configured: Option<[u8; 32]>, dir: &Path) -> Result<Self, String> {
        if let Some(k) = configured {
            return Ok(Self::from_bytes(k, KekSource::Env));
        }
        let path = dir.join("kek");
        if !path.exists() {
            create_dir_private(dir)?;
            let mut key = Zeroizing::new([0u8; 32]);
            rand::rngs::OsRng.fill_bytes(key.as_mut());
            let encoded =
                Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.as_ref()));
            let tmp = dir.join(format!(
                ".kek.{}.{}",
                std::process::id(),
                rand::random::<u64>()
            ));
            let written = open_new_private(&tmp).and_then(|mut file| {
                file.write_all(encoded.as_bytes())
                    .and_then(|_| file.write_all(b"\n"))
                    .and_then(|_| file.sync_all())
                    .map_err(|e| format!("cannot write {}: {e}", tmp.display()))
            });
            let linked = written.and_then(|_| match std::fs::hard_link(&tmp, &path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "created a new key-encryption key");
                    Ok(())
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(format!("cannot create {}: {e}", path.display())),
            });
            let _ = std::fs::remove_file(&tmp);
            linked?;
            sync_dir(dir);
        }
        check_private(&path)?;
        let text = Zeroizing::new(
            std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        );
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| format!("{} is not base64", path.display()))?,
        );
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| format!("{} must hold base64 of 32 bytes", path.display()))?;
        Ok(Self::from_bytes(key, KekSource::File))
    }

    /// Encrypt `plaintext` for the key `kid`: nonce || ciphertext+tag.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, String> {
        let cipher = Aes256Gcm::new_from_slice(self.key.as_ref()).map_err(|e| e.to_string())?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: aad(kid).as_bytes(),
                },
            )
            .map_err(|_| "encryption failed".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypt a blob produced by `seal` for the same kid.
    pub fn open(&self, kid: &str, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        if blob.len() <= NONCE_LEN {
            return Err(format!("sealed key {kid} is truncated"));
        }
        let cipher = Aes256Gcm::new_from_slice(self.key.as_ref()).map_err(|e| e.to_string())?;
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad(kid).as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                format!("sealed key {kid} failed authentication (wrong KEK or tampered row)")
            })
    }
}

fn aad(kid: &str) -> String {
    format!("keymint:signing-key:v1:{kid}")
}

#[cfg(unix)]
fn create_dir_private(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Refuse a key file that group or others can read or write.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is accessible to group or others (mode {:o}); run chmod 600 on it",
            path.display(),
            mode & 0o777
        ));
    }
    Ok(())
}

/// Make a new directory entry durable (best effort).
#[cfg(unix)]
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(unix)]
fn open_new_private(path: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_binds_ciphertext_to_kid_and_key() {
        let kek = Kek::from_bytes([7; 32], KekSource::Env);
        let blob = kek.seal("kid-a", b"private").unwrap();
        assert_eq!(kek.open("kid-a", &blob).unwrap().as_slice(), b"private");
        assert!(kek.open("kid-b", &blob).is_err());
        let other = Kek::from_bytes([8; 32], KekSource::Env);
        assert!(other.open("kid-a", &blob).is_err());
        assert_ne!(kek.id, other.id);
        assert!(!format!("{kek:?}").contains("7, 7"));
    }

    #[cfg(unix)]
    #[test]
    fn file_kek_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let a = Kek::load(None, &keys).unwrap();
        let b = Kek::load(None, &keys).unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!(a.source, KekSource::File);
        let mode = std::fs::metadata(keys.join("kek"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = std::fs::metadata(&keys).unwrap().permissions().mode();
        assert_eq!(dmode & 0o777, 0o700);
        let leftovers: Vec<_> = std::fs::read_dir(&keys).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[cfg(unix)]
    #[test]
    fn a_kek_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        Kek::load(None, &keys).unwrap();
        let path = keys.join("kek");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Kek::load(None, &keys).unwrap_err();
        assert!(
            err.contains(path.to_str().unwrap()) && err.contains("644"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn concurrent_first_starts_agree_on_one_kek() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let ids: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| Kek::load(None, &keys).unwrap().id))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    }
}
