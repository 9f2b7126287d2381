//! Typed configuration: built-in defaults, then an optional TOML file, then `KEYMINT_*`
//! environment variables. `Config::load` validates everything up front so a bad value stops
//! start-up with one line naming the variable, never a panic deep inside a request.
//!
//! Every setting is declared once, in [`SETTINGS`] (`settings.rs`): its key, default, help
//! line and parser. The `--help` text and `keymint.example.toml` are generated from it.

mod docs;
mod parse;
mod settings;

pub use docs::{example_toml, help};
pub use parse::{cron_schedule, format_duration, parse_duration};
pub use settings::SETTINGS;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration problem: which setting, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable (or config file key) at fault.
    pub var: String,
    /// What is wrong, in words a operator can act on.
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(var: &str, problem: impl Into<String>) -> Self {
        Self {
            var: var.to_string(),
            problem: problem.into(),
        }
    }
}

/// Every setting keymint reads. Secrets (`kek`, `bootstrap_admin`) are redacted in `Debug`.
#[derive(Clone)]
pub struct Config {
    pub bind: SocketAddr,
    /// Public base URL without a trailing slash; the `iss` claim.
    pub issuer: String,
    /// Default `aud` of access tokens.
    pub audience: String,
    pub database_url: String,
    pub keys_dir: PathBuf,
    /// Key-encryption key from `KEYMINT_KEK`; `None` means "use or create `keys_dir/kek`".
    pub kek: Option<[u8; 32]>,
    pub key_bits: usize,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// Lifetime of OpenID Connect ID tokens.
    pub id_token_ttl: Duration,
    /// Lifetime of a browser sign-in (`km_sso`).
    pub sso_ttl: Duration,
    pub rotation_cron: String,
    pub cleanup_cron: String,
    pub jwks_max_age: Duration,
    pub leeway: Duration,
    pub refresh_reuse_grace: Duration,
    /// `name:password` applied once at start when no admin exists.
    pub bootstrap_admin: Option<(String, String)>,
    /// `json` or `text`.
    pub log_format: LogFormat,
    /// How often this instance re-reads keys and revocations written by other instances.
    pub sync_interval: Duration,
    /// Origins allowed by CORS; empty = CORS closed.
    pub cors_origins: Vec<String>,
    /// Failed-login throttling.
    pub login_limits: crate::ratelimit::Limits,
    /// A request (headers, body, handler) must complete within this time.
    pub request_timeout: Duration,
    /// A new connection must deliver a complete request head within this time.
    pub header_timeout: Duration,
    /// A connection with no request in flight is closed after this time.
    pub idle_timeout: Duration,
    /// Connections held at once from one client address (IPv6: one /64).
    pub max_connections_per_address: u32,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<crate::net::Cidr>,
    /// Audit events older than this are deleted by cleanup.
    pub audit_retention: Duration,
    /// When set, `/metrics` is served only on this address.
    pub metrics_bind: Option<SocketAddr>,
    /// Where new signing keys are made and kept.
    pub signer: crate::keys::Backend,
    /// The PKCS#11 module, token and PIN, when configured (required by `signer = pkcs11`).
    pub pkcs11_module: Option<PathBuf>,
    pub pkcs11_token: Option<String>,
    pub pkcs11_pin: Option<zeroize::Zeroizing<String>>,
    /// HTTPS: the certificate chain and key (PEM), both or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("database_url", &redact_url(&self.database_url))
            .field("keys_dir", &self.keys_dir)
            .field("kek", &self.kek.map(|_| "<hidden>"))
            .field("key_bits", &self.key_bits)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("id_token_ttl", &self.id_token_ttl)
            .field("sso_ttl", &self.sso_ttl)
            .field("rotation_cron", &self.rotation_cron)
            .field("cleanup_cron", &self.cleanup_cron)
            .field("jwks_max_age", &self.jwks_max_age)
            .field("leeway", &self.leeway)
            .field("refresh_reuse_grace", &self.refresh_reuse_grace)
            .field(
                "bootstrap_admin",
                &self.bootstrap_admin.as_ref().map(|(n, _)| n),
            )
            .field("log_format", &self.log_format)
            .field("sync_interval", &self.sync_interval)
            .field("cors_origins", &self.cors_origins)
            .field("login_limits", &self.login_limits)
            .field("request_timeout", &self.request_timeout)
            .field("header_timeout", &self.header_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field(
                "max_connections_per_address",
                &self.max_connections_per_address,
            )
            .field("trusted_proxies", &self.trusted_proxies)
            .field("audit_retention", &self.audit_retention)
            .field("metrics_bind", &self.metrics_bind)
            .field("signer", &self.signer)
            .field("pkcs11_module", &self.pkcs11_module)
            .field("pkcs11_token", &self.pkcs11_token)
            .field("pkcs11_pin", &self.pkcs11_pin.as_ref().map(|_| "<hidden>"))
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .finish()
    }
}

/// Hide a password inside `scheme://user:password@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:<hidden>{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// One setting.
pub struct Setting {
    /// The TOML key; the environment variable is `KEYMINT_` + the key in upper case.
    pub key: &'static str,
    /// The default, parsed like any value; `None` when absent or derived (see `help`).
    pub default: Option<&'static str>,
    /// One line for `--help` and the example file.
    pub help: &'static str,
    /// Parse `value` (from the source `name`) into the configuration.
    pub apply: fn(&mut Config, &str, &str) -> Result<(), ConfigError>,
}

impl Setting {
    /// The environment variable.
    pub fn var(&self) -> String {
        format!("KEYMINT_{}", self.key.to_uppercase())
    }
}

impl Config {
    /// Load from the process environment and an optional TOML file.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::from_sources(file, &env)
    }

    /// Load from an explicit variable map (tests use this; nothing global is read). For each
    /// setting the environment wins over the file, the file over the default.
    pub fn from_sources(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut raw: HashMap<&'static str, (String, String)> = match file {
            Some(path) => read_file(path)?,
            None => HashMap::new(),
        };
        for s in SETTINGS {
            if let Some(v) = env.get(&s.var()) {
                raw.insert(s.key, (s.var(), v.clone()));
            }
        }
        let mut c = Config::blank();
        for s in SETTINGS {
            match (raw.get(s.key), s.default) {
                (Some((name, value)), _) => (s.apply)(&mut c, name, value)?,
                (None, Some(default)) => (s.apply)(&mut c, &s.var(), default)?,
                (None, None) => {}
            }
        }
        // Derived defaults and rules across settings.
        if c.issuer.is_empty() {
            let scheme = if c.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            c.issuer = format!("{scheme}://{}", c.bind);
        }
        if c.audience.is_empty() {
            c.audience = c.issuer.clone();
        }
        if c.refresh_ttl < c.access_ttl {
            let name = raw
                .get("refresh_ttl")
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| "KEYMINT_REFRESH_TTL".into());
            return Err(ConfigError::new(
                &name,
                "must not be shorter than KEYMINT_ACCESS_TTL",
            ));
        }
        match (&c.tls_cert, &c.tls_key) {
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "KEYMINT_TLS_KEY",
                    "required with KEYMINT_TLS_CERT",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "KEYMINT_TLS_CERT",
                    "required with KEYMINT_TLS_KEY",
                ));
            }
            _ => {}
        }
        if c.signer == crate::keys::Backend::Pkcs11 {
            c.pkcs11()?;
        }
        Ok(c)
    }

    /// The PKCS#11 token to open: `None` when no module is configured, an error naming the
    /// missing setting when the configuration is partial.
    pub fn pkcs11(&self) -> Result<Option<crate::keys::hsm::Pkcs11Config>, ConfigError> {
        let Some(module) = &self.pkcs11_module else {
            return match self.signer {
                crate::keys::Backend::Pkcs11 => Err(ConfigError::new(
                    "KEYMINT_PKCS11_MODULE",
                    "required when KEYMINT_SIGNER is pkcs11",
                )),
                crate::keys::Backend::Local => Ok(None),
            };
        };
        let token = self.pkcs11_token.clone().ok_or_else(|| {
            ConfigError::new(
                "KEYMINT_PKCS11_TOKEN",
                "required with KEYMINT_PKCS11_MODULE",
            )
        })?;
        let pin = self.pkcs11_pin.clone().ok_or_else(|| {
            ConfigError::new(
                "KEYMINT_PKCS11_PIN",
                "KEYMINT_PKCS11_PIN or KEYMINT_PKCS11_PIN_FILE is required with KEYMINT_PKCS11_MODULE",
            )
        })?;
        Ok(Some(crate::keys::hsm::Pkcs11Config {
            module: module.clone(),
            token,
            pin,
        }))
    }

    /// Every field before any setting is applied; settings without a default keep these.
    fn blank() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: String::new(),
            audience: String::new(),
            database_url: String::new(),
            keys_dir: PathBuf::new(),
            kek: None,
            key_bits: 2048,
            access_ttl: Duration::ZERO,
            refresh_ttl: Duration::ZERO,
            id_token_ttl: Duration::ZERO,
            sso_ttl: Duration::ZERO,
            rotation_cron: String::new(),
            cleanup_cron: String::new(),
            jwks_max_age: Duration::ZERO,
            leeway: Duration::ZERO,
            refresh_reuse_grace: Duration::ZERO,
            bootstrap_admin: None,
            log_format: LogFormat::Text,
            sync_interval: Duration::ZERO,
            cors_origins: vec![],
            login_limits: crate::ratelimit::Limits {
                user_free: 0,
                user_max_backoff: 0,
                ip_max: 0,
                ip_window: 0,
            },
            request_timeout: Duration::ZERO,
            header_timeout: Duration::ZERO,
            idle_timeout: Duration::ZERO,
            max_connections_per_address: 0,
            trusted_proxies: vec![],
            audit_retention: Duration::ZERO,
            metrics_bind: None,
            signer: crate::keys::Backend::Local,
            pkcs11_module: None,
            pkcs11_token: None,
            pkcs11_pin: None,
            tls_cert: None,
            tls_key: None,
        }
    }

    /// True when the issuer is served over TLS (HSTS, KEK-file warning).
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

/// The settings of a `--config` TOML file, by key, with the name to blame for a bad value.
fn read_file(path: &Path) -> Result<HashMap<&'static str, (String, String)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new("--config", format!("cannot read {}: {e}", path.display()))
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        ConfigError::new("--config", format!("{}: {}", path.display(), e.message()))
    })?;
    let mut raw = HashMap::new();
    for (k, v) in table {
        let setting = SETTINGS.iter().find(|s| s.key == k).ok_or_else(|| {
            ConfigError::new(
                "--config",
                format!("unknown key `{k}` in {}", path.display()),
            )
        })?;
        let value = match v {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            _ => {
                return Err(ConfigError::new(
                    "--config",
                    format!("`{k}` in {} must be a string or a number", path.display()),
                ));
            }
        };
        raw.insert(setting.key, (format!("{k} (in {})", path.display()), value));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests;
