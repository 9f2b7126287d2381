//! Typed configuration: built-in defaults, then an optional TOML file, then `KEYMINT_*`
//! environment variables. `Config::load` validates everything up front so a bad value stops
//! start-up with one line naming the variable, never a panic deep inside a request.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;

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
    fn new(var: &str, problem: impl Into<String>) -> Self {
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

/// The names of every variable keymint reads, for `--help`.
pub const ENV_HELP: &str = "\
Configuration (environment, or the same keys in lower case without KEYMINT_ in a --config TOML file):
  KEYMINT_BIND                 listen address            [default: 127.0.0.1:8080]
  KEYMINT_ISSUER               public base URL, the iss  [default: http://<bind>]
  KEYMINT_AUDIENCE             aud of access tokens      [default: the issuer]
  KEYMINT_DATABASE_URL         sqlite://… or postgres:// [default: sqlite://data/keymint.db]
  KEYMINT_KEYS_DIR             key-encryption key dir    [default: keys]
  KEYMINT_KEK                  base64 of 32 bytes        [default: the file <keys dir>/kek]
  KEYMINT_KEY_BITS             2048 | 3072 | 4096        [default: 2048]
  KEYMINT_ACCESS_TTL           e.g. 90s, 15m, 30d        [default: 15m]
  KEYMINT_REFRESH_TTL                                    [default: 30d]
  KEYMINT_ROTATION_CRON        sec min hour dom mon dow  [default: 0 0 3 * * Mon]
  KEYMINT_CLEANUP_CRON                                   [default: 0 */10 * * * *]
  KEYMINT_JWKS_MAX_AGE                                   [default: 300s]
  KEYMINT_LEEWAY               clock skew on exp/nbf     [default: 30s]
  KEYMINT_REFRESH_REUSE_GRACE  retry window for refresh  [default: 0s]
  KEYMINT_SYNC_INTERVAL        multi-instance sync poll  [default: 500ms]
  KEYMINT_BOOTSTRAP_ADMIN      name:password, once       [default: none]
  KEYMINT_CORS_ORIGINS         comma-separated origins   [default: none, CORS closed]
  KEYMINT_LOGIN_USER_FAILURES  free failures per user    [default: 5, then 1s, 2s, 4s… back-off]
  KEYMINT_LOGIN_LOCKOUT_MAX    back-off cap              [default: 15m]
  KEYMINT_LOGIN_IP_FAILURES    failures per address      [default: 20 per window]
  KEYMINT_LOGIN_IP_WINDOW                                [default: 5m]
  KEYMINT_REQUEST_TIMEOUT      whole-request deadline    [default: 30s]
  KEYMINT_HEADER_TIMEOUT       first request head due    [default: 10s after connecting]
  KEYMINT_IDLE_TIMEOUT         idle connection closed    [default: 10s]
  KEYMINT_MAX_CONNECTIONS_PER_ADDRESS                    [default: 256; IPv6 per /64]
  KEYMINT_TRUSTED_PROXIES      proxies whose X-Forwarded-For is believed (addresses, CIDRs) [default: none]
  KEYMINT_AUDIT_RETENTION      audit events kept for     [default: 90d]
  KEYMINT_METRICS_BIND         serve /metrics only here  [default: none, on the main listener]
  KEYMINT_LOG_FORMAT           text | json               [default: text]
  RUST_LOG                     log filter                [default: info]";

const KEYS: &[&str] = &[
    "bind",
    "issuer",
    "audience",
    "database_url",
    "keys_dir",
    "kek",
    "key_bits",
    "access_ttl",
    "refresh_ttl",
    "rotation_cron",
    "cleanup_cron",
    "jwks_max_age",
    "leeway",
    "refresh_reuse_grace",
    "sync_interval",
    "bootstrap_admin",
    "log_format",
    "cors_origins",
    "login_user_failures",
    "login_lockout_max",
    "login_ip_failures",
    "login_ip_window",
    "request_timeout",
    "header_timeout",
    "idle_timeout",
    "max_connections_per_address",
    "trusted_proxies",
    "audit_retention",
    "metrics_bind",
];

impl Config {
    /// Load from the process environment and an optional TOML file.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::from_sources(file, &env)
    }

    /// Load from an explicit variable map (tests use this; nothing global is read).
    pub fn from_sources(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut raw: HashMap<&'static str, (String, String)> = HashMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new("--config", format!("cannot read {}: {e}", path.display()))
            })?;
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                ConfigError::new("--config", format!("{}: {}", path.display(), e.message()))
            })?;
            for (k, v) in table {
                let key = KEYS.iter().find(|known| **known == k).ok_or_else(|| {
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
                raw.insert(key, (format!("{k} (in {})", path.display()), value));
            }
        }
        for key in KEYS {
            let var = format!("KEYMINT_{}", key.to_uppercase());
            if let Some(v) = env.get(&var) {
                raw.insert(key, (var, v.clone()));
            }
        }
        let get = |key: &'static str| raw.get(key).map(|(n, v)| (n.as_str(), v.as_str()));
        let name = |key: &'static str| {
            raw.get(key)
                .map(|(n, _)| n.clone())
                .unwrap_or(format!("KEYMINT_{}", key.to_uppercase()))
        };

        let bind: SocketAddr = match get("bind") {
            Some((n, v)) => v.parse().map_err(|_| {
                ConfigError::new(
                    n,
                    format!("expected host:port like 127.0.0.1:8080, got {v:?}"),
                )
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let issuer = match get("issuer") {
            Some((n, v)) => parse_issuer(n, v)?,
            None => format!("http://{bind}"),
        };
        let audience = match get("audience") {
            Some((n, v)) if v.trim().is_empty() => {
                return Err(ConfigError::new(n, "must not be empty"));
            }
            Some((_, v)) => v.to_string(),
            None => issuer.clone(),
        };
        let database_url = match get("database_url") {
            Some((n, v)) => {
                if !(v.starts_with("sqlite:")
                    || v.starts_with("postgres://")
                    || v.starts_with("postgresql://"))
                {
                    return Err(ConfigError::new(
                        n,
                        "expected a sqlite:… or postgres://… URL",
                    ));
                }
                v.to_string()
            }
            None => "sqlite://data/keymint.db".to_string(),
        };
        let keys_dir = get("keys_dir")
            .map(|(_, v)| PathBuf::from(v))
            .unwrap_or_else(|| PathBuf::from("keys"));
        let kek = match get("kek") {
            Some((n, v)) => Some(parse_kek(n, v)?),
            None => None,
        };
        let key_bits = match get("key_bits") {
            Some((n, v)) => match v.trim() {
                "2048" => 2048,
                "3072" => 3072,
                "4096" => 4096,
                _ => {
                    return Err(ConfigError::new(
                        n,
                        format!("expected 2048, 3072 or 4096, got {v:?}"),
                    ));
                }
            },
            None => 2048,
        };
        let dur = |key: &'static str,
                   default: Duration,
                   min: Duration|
         -> Result<Duration, ConfigError> {
            match get(key) {
                Some((n, v)) => {
                    let d = parse_duration(v).map_err(|p| ConfigError::new(n, p))?;
                    if d < min {
                        return Err(ConfigError::new(
                            n,
                            format!("must be at least {}", format_duration(min)),
                        ));
                    }
                    Ok(d)
                }
                None => Ok(default),
            }
        };
        let access_ttl = dur(
            "access_ttl",
            Duration::from_secs(15 * 60),
            Duration::from_secs(1),
        )?;
        let refresh_ttl = dur(
            "refresh_ttl",
            Duration::from_secs(30 * 86400),
            Duration::from_secs(1),
        )?;
        if refresh_ttl < access_ttl {
            return Err(ConfigError::new(
                &name("refresh_ttl"),
                "must not be shorter than KEYMINT_ACCESS_TTL",
            ));
        }
        let jwks_max_age = dur("jwks_max_age", Duration::from_secs(300), Duration::ZERO)?;
        let leeway = dur("leeway", Duration::from_secs(30), Duration::ZERO)?;
        let refresh_reuse_grace = dur("refresh_reuse_grace", Duration::ZERO, Duration::ZERO)?;
        let sync_interval = dur(
            "sync_interval",
            Duration::from_millis(500),
            Duration::from_millis(50),
        )?;
        let rotation_cron = match get("rotation_cron") {
            Some((n, v)) => parse_cron(n, v)?,
            None => "0 0 3 * * Mon".to_string(),
        };
        let cleanup_cron = match get("cleanup_cron") {
            Some((n, v)) => parse_cron(n, v)?,
            None => "0 */10 * * * *".to_string(),
        };
        let bootstrap_admin = match get("bootstrap_admin") {
            Some((n, v)) => match v.split_once(':') {
                Some((user, pass)) if !user.is_empty() && !pass.is_empty() => {
                    crate::users::validate_username(user).map_err(|p| ConfigError::new(n, p))?;
                    crate::users::validate_password(pass).map_err(|p| ConfigError::new(n, p))?;
                    Some((user.to_string(), pass.to_string()))
                }
                _ => return Err(ConfigError::new(n, "expected name:password")),
            },
            None => None,
        };
        let cors_origins = match get("cors_origins") {
            Some((n, v)) => parse_origins(n, v)?,
            None => vec![],
        };
        let count = |key: &'static str, default: u32| -> Result<u32, ConfigError> {
            match get(key) {
                Some((n, v)) => v
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|c| *c >= 1)
                    .ok_or_else(|| {
                        ConfigError::new(n, format!("expected a positive whole number, got {v:?}"))
                    }),
                None => Ok(default),
            }
        };
        let login_limits = crate::ratelimit::Limits {
            user_free: count("login_user_failures", 5)?,
            user_max_backoff: dur(
                "login_lockout_max",
                Duration::from_secs(900),
                Duration::from_secs(1),
            )?
            .as_secs() as i64,
            ip_max: count("login_ip_failures", 20)?,
            ip_window: dur(
                "login_ip_window",
                Duration::from_secs(300),
                Duration::from_secs(1),
            )?
            .as_secs() as i64,
        };
        let request_timeout = dur(
            "request_timeout",
            Duration::from_secs(30),
            Duration::from_secs(1),
        )?;
        let header_timeout = dur(
            "header_timeout",
            Duration::from_secs(10),
            Duration::from_secs(1),
        )?;
        let idle_timeout = dur(
            "idle_timeout",
            Duration::from_secs(10),
            Duration::from_secs(1),
        )?;
        let max_connections_per_address = count("max_connections_per_address", 256)?;
        let trusted_proxies = match get("trusted_proxies") {
            Some((n, v)) => crate::net::parse_cidrs(v).map_err(|p| ConfigError::new(n, p))?,
            None => vec![],
        };
        let audit_retention = dur(
            "audit_retention",
            Duration::from_secs(90 * 86400),
            Duration::from_secs(60),
        )?;
        let metrics_bind = match get("metrics_bind") {
            Some((n, v)) => Some(v.parse::<SocketAddr>().map_err(|_| {
                ConfigError::new(
                    n,
                    format!("expected host:port like 127.0.0.1:9090, got {v:?}"),
                )
            })?),
            None => None,
        };
        let log_format = match get("log_format") {
            Some((_, "json")) => LogFormat::Json,
            Some((_, "text")) | None => LogFormat::Text,
            Some((n, v)) => {
                return Err(ConfigError::new(
                    n,
                    format!("expected text or json, got {v:?}"),
                ));
            }
        };
        Ok(Config {
            bind,
            issuer,
            audience,
            database_url,
            keys_dir,
            kek,
            key_bits,
            access_ttl,
            refresh_ttl,
            rotation_cron,
            cleanup_cron,
            jwks_max_age,
            leeway,
            refresh_reuse_grace,
            bootstrap_admin,
            log_format,
            sync_interval,
            cors_origins,
            login_limits,
            request_timeout,
            header_timeout,
            idle_timeout,
            max_connections_per_address,
            trusted_proxies,
            audit_retention,
            metrics_bind,
        })
    }

    /// True when the issuer is served over TLS (HSTS, KEK-file warning).
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

fn parse_issuer(name: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim().trim_end_matches('/');
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .ok_or_else(|| {
            ConfigError::new(
                name,
                format!("expected an http:// or https:// URL, got {v:?}"),
            )
        })?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(ConfigError::new(
            name,
            format!("expected a base URL without query or fragment, got {v:?}"),
        ));
    }
    Ok(v.to_string())
}

fn parse_origins(name: &str, v: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for o in v.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let rest = o
            .strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"));
        let ok = rest.is_some_and(|r| !r.is_empty() && !r.contains(['/', '?', '#', '*', ' ']));
        if !ok {
            return Err(ConfigError::new(
                name,
                format!("{o:?} is not an origin like https://app.example (no path, no wildcard)"),
            ));
        }
        out.push(o.to_string());
    }
    Ok(out)
}

fn parse_kek(name: &str, v: &str) -> Result<[u8; 32], ConfigError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v.trim()))
        .map_err(|_| {
            ConfigError::new(
                name,
                "expected base64 of 32 bytes (try: openssl rand -base64 32)",
            )
        })?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| ConfigError::new(name, format!("expected 32 bytes, got {}", b.len())))
}

fn parse_cron(name: &str, v: &str) -> Result<String, ConfigError> {
    cron_schedule(v).map(|_| v.trim().to_string()).map_err(|e| {
        ConfigError::new(
            name,
            format!("invalid cron expression {v:?} ({e}); expected sec min hour dom mon dow"),
        )
    })
}

/// Parse a cron expression exactly as tokio-cron-scheduler does (seconds field required), so
/// a value accepted here is one the scheduler runs.
pub fn cron_schedule(v: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(v.trim())
        .map_err(|e| e.to_string())
}

/// Parse `90s`, `15m`, `2h`, `30d`, `500ms`, or a bare number of seconds.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("expected a duration like 90s, 15m or 30d, got {v:?}"))?;
    let secs = |mult: u64| n.checked_mul(mult).map(Duration::from_secs);
    let d = match unit {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86400),
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {v:?}; use ms, s, m, h or d"
            ));
        }
    };
    d.filter(|d| d.as_secs() <= 10 * 365 * 86400)
        .ok_or_else(|| format!("{v:?} is longer than ten years"))
}

/// Render a duration the way `parse_duration` reads it.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else if s != 0 && s.is_multiple_of(86400) {
        format!("{}d", s / 86400)
    } else if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_sources(None, &env)
    }

    #[test]
    fn defaults_need_no_configuration() {
        let c = load(&[]).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(c.audience, c.issuer);
        assert_eq!(c.access_ttl, Duration::from_secs(900));
        assert_eq!(c.refresh_ttl, Duration::from_secs(30 * 86400));
        assert_eq!(c.leeway, Duration::from_secs(30));
        assert_eq!(c.key_bits, 2048);
        assert!(c.database_url.starts_with("sqlite:"));
    }

    #[test]
    fn durations_accept_the_documented_units() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("15 minutes").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases: &[(&str, &str)] = &[
            ("KEYMINT_ACCESS_TTL", "soon"),
            ("KEYMINT_KEY_BITS", "1024"),
            ("KEYMINT_BIND", "localhost"),
            ("KEYMINT_KEK", "c2hvcnQ="),
            ("KEYMINT_ISSUER", "ftp://x"),
            ("KEYMINT_ROTATION_CRON", "every tuesday"),
            ("KEYMINT_DATABASE_URL", "mysql://x"),
            ("KEYMINT_BOOTSTRAP_ADMIN", "nocolon"),
            ("KEYMINT_CORS_ORIGINS", "*"),
            ("KEYMINT_CORS_ORIGINS", "https://a.example/path"),
            ("KEYMINT_LOGIN_IP_FAILURES", "0"),
            ("KEYMINT_REQUEST_TIMEOUT", "0s"),
        ];
        for (var, value) in cases {
            let err = load(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, *var, "{value}");
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let c = load(&[
            (
                "KEYMINT_KEK",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            ),
            ("KEYMINT_BOOTSTRAP_ADMIN", "root:s3cret-pass"),
            ("KEYMINT_DATABASE_URL", "postgres://u:pw@h/db"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret-pass"));
        assert!(!shown.contains("AAECAwQF"));
        assert!(!shown.contains(":pw@"));
    }
}
