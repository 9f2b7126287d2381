//! The vocabulary of keys: purposes, lifecycle states with their database names, the
//! lifetimes policy, and the public shapes (`KeyInfo`, JWK, JWKS).

use serde::{Deserialize, Serialize};

/// What a key signs. Access keys are published; refresh keys never are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The name stored in `signing_keys.state`; queries use this, never a string literal.
    pub const fn as_str(self) -> &'static str {
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

/// Where a key's private half is held (`KEYMINT_SIGNER` picks it for new keys).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Sealed with the KEK in the database, opened into memory to sign.
    #[default]
    Local,
    /// Generated and kept in a PKCS#11 token; it never leaves it.
    Pkcs11,
}

impl Backend {
    /// The name stored in `signing_keys.backend` and used by `KEYMINT_SIGNER`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Pkcs11 => "pkcs11",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "local" => Some(Backend::Local),
            "pkcs11" => Some(Backend::Pkcs11),
            _ => None,
        }
    }
}

/// Lifetimes the key manager needs to know when a retired key may go.
#[derive(Clone, Copy, Debug)]
pub struct KeyPolicy {
    pub bits: usize,
    /// The longest lifetime of what an access key signs: access tokens and ID tokens.
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

/// Public description of a key for `GET /admin/keys` and `keymint keys list`.
#[derive(Clone, Debug, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub purpose: Purpose,
    pub state: KeyState,
    /// Where the private key is held.
    pub backend: Backend,
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
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ActiveAndNext {
    pub active: String,
    pub next: String,
}

/// One public key in JWKS form (RFC 7517).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
    /// RFC 7638 thumbprint of the key.
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Public exponent, base64url.
    pub e: String,
}

impl Jwk {
    pub(super) fn new(r: &crate::db::entities::signing_keys::Model) -> Self {
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
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}
