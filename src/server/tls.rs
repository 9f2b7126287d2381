//! HTTPS without a proxy (`KEYMINT_TLS_CERT`, `KEYMINT_TLS_KEY`): rustls on aws-lc, HTTP/2 and
//! HTTP/1.1 by ALPN. The certificate and key are re-read when either file changes (checked
//! every `RELOAD_EVERY`), so a renewed certificate is served without a restart; a pair that
//! fails to load is logged and the previous one stays in service.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// How often the certificate files are checked for a change.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// The TLS side of the listener: an acceptor whose certificate can be swapped.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    certs: Arc<Reloading>,
}

/// The current certificate, and what the files looked like when it was read.
#[derive(Debug)]
struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    seen: Mutex<Option<(SystemTime, SystemTime)>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match self.current.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        })
    }
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Read a certificate chain and its private key (PEM) into a signing-ready pair.
fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("KEYMINT_TLS_CERT: cannot read {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("KEYMINT_TLS_CERT: {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "KEYMINT_TLS_CERT: no certificate in {}",
            cert.display()
        ));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "KEYMINT_TLS_KEY: cannot read a private key from {}: {e}",
            key.display()
        )
    })?;
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&der)
        .map_err(|e| format!("KEYMINT_TLS_KEY: {}: {e}", key.display()))?;
    let pair = CertifiedKey::new(chain, signing);
    pair.keys_match()
        .map_err(|e| format!("KEYMINT_TLS_KEY does not match KEYMINT_TLS_CERT: {e}"))?;
    Ok(pair)
}

impl Tls {
    /// The configured pair, loaded; `None` without `KEYMINT_TLS_CERT` (plain HTTP).
    pub fn configured(c: &crate::config::Config) -> Result<Option<Arc<Tls>>, String> {
        match (&c.tls_cert, &c.tls_key) {
            (Some(cert), Some(key)) => Self::load(cert, key).map(Some),
            _ => Ok(None),
        }
    }

    /// Load the pair once (a bad pair stops start-up: the error names the setting).
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Tls>, String> {
        let seen = modified(cert).zip(modified(key));
        let pair = load_pair(cert, key)?;
        let certs = Arc::new(Reloading {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(pair)),
            seen: Mutex::new(seen),
        });
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(certs.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certs,
        }))
    }

    /// Re-read the pair if either file changed since the last read. Returns whether a new
    /// pair is now served.
    pub fn reload_if_changed(&self) -> bool {
        let r = &self.certs;
        let now = modified(&r.cert).zip(modified(&r.key));
        let mut seen = r.seen.lock().unwrap_or_else(|p| p.into_inner());
        if now.is_none() || now == *seen {
            return false;
        }
        match load_pair(&r.cert, &r.key) {
            Ok(pair) => {
                *r.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pair);
                *seen = now;
                tracing::info!(cert = %r.cert.display(), "TLS certificate reloaded");
                true
            }
            // Often the two files are written one after the other: try again next time.
            Err(e) => {
                tracing::warn!("TLS certificate not reloaded, the previous one stays: {e}");
                false
            }
        }
    }
}
