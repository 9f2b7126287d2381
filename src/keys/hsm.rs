//! The PKCS#11 key backend: RSA keys generated and kept inside a token (an HSM, or SoftHSM2
//! in tests), signing with `CKM_SHA256_RSA_PKCS`. The private half never leaves the token: it
//! is made sensitive and not extractable, and the database keeps only the public key.
//!
//! A module is loaded and `C_Initialize`d once per process (a second initialisation fails),
//! however many key managers use it. The user logs in once: PKCS#11 login belongs to the
//! application, not the session, and ends when its last session closes, so one session stays
//! open for the life of the [`Hsm`]. Signing sessions come from a pool: a `Session` is `Send`
//! but not `Sync`, so each is used by one thread at a time and returned afterwards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::material::thumbprint;
use super::types::Purpose;

/// What `KEYMINT_PKCS11_*` say: the module, the token's label and its user PIN.
#[derive(Clone)]
pub struct Pkcs11Config {
    pub module: PathBuf,
    pub token: String,
    pub pin: Zeroizing<String>,
}

impl std::fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token", &self.token)
            .field("pin", &"<hidden>")
            .finish()
    }
}

/// Signing sessions, opened as needed up to this many; callers beyond it wait for one. Enough
/// to keep a network HSM busy across its round trips, few enough that no session is opened
/// and closed per request and a software token's signs do not pile up on the cores.
const POOL_SIZE: usize = 16;

#[derive(Default)]
struct Pool {
    idle: Vec<Session>,
    /// Sessions open, idle or lent out.
    open: usize,
}

/// An open token, logged in.
pub struct Hsm {
    ctx: Pkcs11,
    slot: Slot,
    pub token: String,
    /// Holds the login (see the module documentation); also serves generation and cleanup.
    admin: Mutex<Session>,
    pool: Mutex<Pool>,
    returned: Condvar,
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hsm").field("token", &self.token).finish()
    }
}

/// A public key read back from a key pair generated in the token.
#[derive(Debug)]
pub struct HsmKey {
    pub kid: String,
    pub n: String,
    pub e: String,
    pub bits: usize,
}

/// The private key object of one kid, signing through the pool of an [`Hsm`].
pub struct HsmSigner {
    hsm: Arc<Hsm>,
    key: ObjectHandle,
}

/// The module at `path`, loaded and initialised once per process.
pub fn module(path: &Path) -> Result<Pkcs11, String> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut loaded = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(m) = loaded.get(path) {
        return Ok(m.clone());
    }
    let ctx = Pkcs11::new(path)
        .map_err(|e| format!("KEYMINT_PKCS11_MODULE: cannot load {}: {e}", path.display()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(format!(
                "KEYMINT_PKCS11_MODULE: {} failed to initialise: {e}",
                path.display()
            ));
        }
    }
    loaded.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// Labels are fixed-width and space-padded in `CK_TOKEN_INFO`.
fn token_slot(ctx: &Pkcs11, label: &str) -> Result<Slot, String> {
    let slots = ctx
        .get_slots_with_initialized_token()
        .map_err(|e| format!("KEYMINT_PKCS11_TOKEN: cannot list the module's tokens: {e}"))?;
    let mut seen = Vec::new();
    for slot in slots {
        if let Ok(info) = ctx.get_token_info(slot) {
            let l = info.label().trim_end().to_string();
            if l == label {
                return Ok(slot);
            }
            seen.push(l);
        }
    }
    Err(format!(
        "KEYMINT_PKCS11_TOKEN: no initialised token labelled {label:?} (the module has: {})",
        if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join(", ")
        }
    ))
}

fn label(purpose: Purpose, kid: &str) -> Vec<u8> {
    format!("keymint:{}:{kid}", purpose.as_str()).into_bytes()
}

impl Hsm {
    /// Load the module, find the token and log in. Every error names the setting to fix and
    /// never contains the PIN.
    pub fn open(cfg: &Pkcs11Config) -> Result<Hsm, String> {
        let ctx = module(&cfg.module)?;
        let slot = token_slot(&ctx, &cfg.token)?;
        let admin = ctx
            .open_rw_session(slot)
            .map_err(|e| format!("KEYMINT_PKCS11_TOKEN: cannot open a session: {e}"))?;
        let pin = AuthPin::new(cfg.pin.as_str().into());
        match admin.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(P11Error::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid, _)) => {
                return Err(format!(
                    "KEYMINT_PKCS11_PIN: token {:?} refused the PIN",
                    cfg.token
                ));
            }
            Err(P11Error::Pkcs11(RvError::PinLocked, _)) => {
                return Err(format!(
                    "KEYMINT_PKCS11_PIN: token {:?} is locked",
                    cfg.token
                ));
            }
            Err(e) => return Err(format!("KEYMINT_PKCS11_PIN: login failed: {e}")),
        }
        Ok(Hsm {
            ctx,
            slot,
            token: cfg.token.clone(),
            admin: Mutex::new(admin),
            pool: Mutex::new(Pool::default()),
            returned: Condvar::new(),
        })
    }

    fn admin(&self) -> std::sync::MutexGuard<'_, Session> {
        self.admin.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Generate an RSA key pair of `bits` bits in the token. Blocking (RSA generation runs in
    /// the token): call it off the async runtime. The kid, an RFC 7638 thumbprint, is known only
    /// once the public key exists, so the pair gets its final label and id right after.
    pub fn generate(&self, purpose: Purpose, bits: usize) -> Result<HsmKey, String> {
        let session = self.admin();
        let pending = format!("keymint:{}:pending", purpose.as_str()).into_bytes();
        // Sign and verify only: no encryption, decryption or key wrapping with these keys.
        let public = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::ModulusBits((bits as u64).into()),
            Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            Attribute::Label(pending.clone()),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Label(pending),
        ];
        // A token may fail a generation transiently (SoftHSM2 answers CKR_GENERAL_ERROR while
        // another session in the process rescans its object store): try up to three times.
        let mut attempt = 0;
        let (pub_h, priv_h) = loop {
            attempt += 1;
            match session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private) {
                Ok(pair) => break pair,
                Err(e) if attempt < 3 => {
                    tracing::warn!(attempt, "pkcs11 key generation failed, retrying: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(100 * attempt));
                }
                Err(e) => return Err(format!("pkcs11 key generation: {e}")),
            }
        };
        let named = name_pair(&session, purpose, bits, pub_h, priv_h);
        if named.is_err() {
            // Never leave an unnamed pair behind: `destroy` finds keys by their id only.
            let _ = session.destroy_object(priv_h);
            let _ = session.destroy_object(pub_h);
        }
        named
    }

    /// The private key object named `kid`, ready to sign. Looked up on a pooled session, so a
    /// key generation holding the admin session does not hold the lookup up.
    pub fn signer(self: &Arc<Self>, kid: &str) -> Result<HsmSigner, String> {
        let session = self.checkout()?;
        let found = session.find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(kid.as_bytes().to_vec()),
        ]);
        self.give_back(session);
        let found = found.map_err(|e| format!("pkcs11 find key {kid}: {e}"))?;
        let key = *found
            .first()
            .ok_or_else(|| format!("signing key {kid} is not in PKCS#11 token {:?}", self.token))?;
        Ok(HsmSigner {
            hsm: self.clone(),
            key,
        })
    }

    /// Destroy every object (private and public key) named `kid`. Returns how many went.
    pub fn destroy(&self, kid: &str) -> Result<usize, String> {
        let session = self.admin();
        let found = session
            .find_objects(&[Attribute::Id(kid.as_bytes().to_vec())])
            .map_err(|e| format!("pkcs11 find key {kid}: {e}"))?;
        for h in &found {
            session
                .destroy_object(*h)
                .map_err(|e| format!("pkcs11 destroy key {kid}: {e}"))?;
        }
        Ok(found.len())
    }

    /// A signing session: an idle one, a new one while fewer than `POOL_SIZE` are open, or
    /// else the next one returned.
    fn checkout(&self) -> Result<Session, String> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(s) = pool.idle.pop() {
                return Ok(s);
            }
            if pool.open < POOL_SIZE {
                pool.open += 1;
                drop(pool);
                let opened = self
                    .ctx
                    .open_ro_session(self.slot)
                    .map_err(|e| format!("pkcs11 session: {e}"));
                if opened.is_err() {
                    self.discard();
                }
                return opened;
            }
            pool = self.returned.wait(pool).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn give_back(&self, s: Session) {
        self.pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .idle
            .push(s);
        self.returned.notify_one();
    }

    /// A lent session that failed is closed (dropped by the caller); make room for another.
    fn discard(&self) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.open = pool.open.saturating_sub(1);
        drop(pool);
        self.returned.notify_one();
    }
}

impl HsmSigner {
    /// RS256 inside the token. A session that failed is dropped (closed), not pooled.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, String> {
        let session = self.hsm.checkout()?;
        match session.sign(&Mechanism::Sha256RsaPkcs, self.key, msg) {
            Ok(sig) => {
                self.hsm.give_back(session);
                Ok(sig)
            }
            Err(e) => {
                drop(session);
                self.hsm.discard();
                Err(format!("pkcs11 sign: {e}"))
            }
        }
    }
}

/// Read the public key of a pair just generated, and name both halves after its kid.
fn name_pair(
    session: &Session,
    purpose: Purpose,
    bits: usize,
    pub_h: ObjectHandle,
    priv_h: ObjectHandle,
) -> Result<HsmKey, String> {
    let attrs = session
        .get_attributes(
            pub_h,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .map_err(|e| format!("pkcs11 public key: {e}"))?;
    let (mut n, mut e) = (Vec::new(), Vec::new());
    for a in attrs {
        match a {
            Attribute::Modulus(v) => n = v,
            Attribute::PublicExponent(v) => e = v,
            _ => {}
        }
    }
    if n.is_empty() || e.is_empty() {
        return Err("pkcs11 public key: the token returned no modulus or exponent".into());
    }
    let (n, e) = (B64.encode(strip_zeros(&n)), B64.encode(strip_zeros(&e)));
    let kid = thumbprint(&n, &e);
    let named = [
        Attribute::Label(label(purpose, &kid)),
        Attribute::Id(kid.as_bytes().to_vec()),
    ];
    for h in [pub_h, priv_h] {
        session
            .update_attributes(h, &named)
            .map_err(|e| format!("pkcs11 naming key {kid}: {e}"))?;
    }
    Ok(HsmKey { kid, n, e, bits })
}

/// Big-endian integers from a token may carry leading zero bytes; JWK values must not.
fn strip_zeros(v: &[u8]) -> &[u8] {
    let i = v
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(v.len().saturating_sub(1));
    &v[i..]
}
