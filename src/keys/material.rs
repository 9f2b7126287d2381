//! RSA key generation (CPU-heavy: callers run it on the blocking pool) and the RFC 7638
//! thumbprint that names each key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A freshly generated key pair: public components and the PKCS#8 DER private key.
pub struct KeyMaterial {
    pub kid: String,
    pub n: String,
    pub e: String,
    pub bits: usize,
    pub pkcs8_der: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("kid", &self.kid)
            .field("pkcs8_der", &"<hidden>")
            .finish()
    }
}

/// Generate an RSA key of `bits` bits. Blocking: seconds at 4096 bits.
pub fn generate(bits: usize) -> Result<KeyMaterial, String> {
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits)
        .map_err(|e| format!("rsa keygen: {e}"))?;
    let n = B64.encode(key.n().to_bytes_be());
    let e = B64.encode(key.e().to_bytes_be());
    let doc = key
        .to_pkcs8_der()
        .map_err(|e| format!("pkcs8 encode: {e}"))?;
    Ok(KeyMaterial {
        kid: thumbprint(&n, &e),
        n,
        e,
        bits,
        pkcs8_der: Zeroizing::new(doc.as_bytes().to_vec()),
    })
}

/// A key pair from an existing PKCS#8 DER private key.
pub fn from_pkcs8_der(der: &[u8]) -> Result<KeyMaterial, String> {
    use rsa::pkcs8::DecodePrivateKey;
    let key = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| format!("pkcs8 decode: {e}"))?;
    let n = B64.encode(key.n().to_bytes_be());
    let e = B64.encode(key.e().to_bytes_be());
    Ok(KeyMaterial {
        kid: thumbprint(&n, &e),
        bits: key.size() * 8,
        n,
        e,
        pkcs8_der: Zeroizing::new(der.to_vec()),
    })
}

/// Where new key pairs come from: always generated in production; tests may hand out a fixed
/// set of pre-generated keys first, so a server starts without seconds of RSA work. Each
/// fixture is handed out once per source (share one source among instances on one database,
/// so no kid repeats there), then generation takes over.
#[derive(Clone, Default)]
pub struct KeySource {
    fixtures: Option<std::sync::Arc<Fixtures>>,
}

struct Fixtures {
    ders: Vec<Vec<u8>>,
    next: std::sync::atomic::AtomicUsize,
}

impl KeySource {
    /// Generate every key.
    pub fn generate() -> Self {
        Self::default()
    }

    /// Hand out these PKCS#8 DER keys first (those of the wanted size), then generate.
    pub fn fixtures_first(ders: Vec<Vec<u8>>) -> Self {
        Self {
            fixtures: Some(std::sync::Arc::new(Fixtures {
                ders,
                next: Default::default(),
            })),
        }
    }

    /// A new key pair of `bits` bits. Blocking when it generates: run it off the runtime.
    pub fn next_blocking(&self, bits: usize) -> Result<KeyMaterial, String> {
        if let Some(f) = &self.fixtures {
            loop {
                let i = f.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(der) = f.ders.get(i) else { break };
                let m = from_pkcs8_der(der)?;
                if m.bits == bits {
                    return Ok(m);
                }
            }
        }
        generate(bits)
    }
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA public key given as base64url n, e.
pub fn thumbprint(n: &str, e: &str) -> String {
    // Members in lexicographic order, no whitespace, exactly as RFC 7638 section 3 requires.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    B64.encode(Sha256::digest(canonical.as_bytes()))
}

/// The public key as SPKI PEM, for `keymint keys export --pem`.
pub fn public_pem(n: &str, e: &str) -> Result<String, String> {
    use rsa::pkcs8::EncodePublicKey;
    let n = B64.decode(n).map_err(|e| e.to_string())?;
    let e = B64.decode(e).map_err(|e| e.to_string())?;
    let key = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&n),
        rsa::BigUint::from_bytes_be(&e),
    )
    .map_err(|e| e.to_string())?;
    key.to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|e| e.to_string())
}

/// The PKCS#8 DER keys of a PEM file of `PRIVATE KEY` blocks (the committed test fixtures).
pub fn pkcs8_from_pem(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    pem.split("-----BEGIN PRIVATE KEY-----")
        .filter_map(|block| block.split("-----END PRIVATE KEY-----").next())
        .map(|b64| b64.split_whitespace().collect::<String>())
        .filter(|b64| !b64.is_empty())
        .map(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("PEM: {e}"))
        })
        .collect()
}

/// The committed test keys (`tests/fixtures/rsa2048-test-keys.pem`), for unit tests that do
/// not exercise generation.
#[cfg(test)]
pub(crate) fn fixture(i: usize) -> KeyMaterial {
    let ders = pkcs8_from_pem(include_str!("../../tests/fixtures/rsa2048-test-keys.pem")).unwrap();
    from_pkcs8_der(ders.get(i).expect("not that many fixture keys")).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_handed_out_once_then_keys_are_generated() {
        let a = generate(2048).unwrap();
        let src = KeySource::fixtures_first(vec![a.pkcs8_der.to_vec()]);
        let first = src.next_blocking(2048).unwrap();
        assert_eq!(first.kid, a.kid);
        assert_eq!((first.n.as_str(), first.bits), (a.n.as_str(), 2048));
        let second = src.next_blocking(2048).unwrap();
        assert_ne!(second.kid, a.kid, "a fixture is never handed out twice");
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // The worked example of RFC 7638 section 3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
