//! Every setting keymint reads, declared once: key, default, help line and parser. `--help`
//! and `keymint.example.toml` are generated from this table.

use std::path::PathBuf;
use std::time::Duration;

use super::parse::{
    Applied, SEC, addr, count, dur, parse_cron, parse_issuer, parse_kek, parse_origins,
};
use super::{ConfigError, LogFormat, Setting};

/// Every setting, in `--help` order.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "bind",
        default: Some("127.0.0.1:8080"),
        help: "listen address",
        apply: |c, n, v| -> Applied {
            c.bind = addr(n, v, "127.0.0.1:8080")?;
            Ok(())
        },
    },
    Setting {
        key: "issuer",
        default: None,
        help: "public base URL, the iss claim [default: http://<bind>]",
        apply: |c, n, v| -> Applied {
            c.issuer = parse_issuer(n, v)?;
            Ok(())
        },
    },
    Setting {
        key: "audience",
        default: None,
        help: "aud of access tokens [default: the issuer]",
        apply: |c, n, v| -> Applied {
            if v.trim().is_empty() {
                return Err(ConfigError::new(n, "must not be empty"));
            }
            c.audience = v.to_string();
            Ok(())
        },
    },
    Setting {
        key: "database_url",
        default: Some("sqlite://data/keymint.db"),
        help: "sqlite://… or postgres://…",
        apply: |c, n, v| -> Applied {
            let ok = ["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|p| v.starts_with(p));
            if !ok {
                return Err(ConfigError::new(
                    n,
                    "expected a sqlite:… or postgres://… URL",
                ));
            }
            c.database_url = v.to_string();
            Ok(())
        },
    },
    Setting {
        key: "keys_dir",
        default: Some("keys"),
        help: "directory of the key-encryption key file",
        apply: |c, _, v| -> Applied {
            c.keys_dir = PathBuf::from(v);
            Ok(())
        },
    },
    Setting {
        key: "kek",
        default: None,
        help: "key-encryption key, base64 of 32 bytes [default: the file <keys dir>/kek]",
        apply: |c, n, v| -> Applied {
            c.kek = Some(parse_kek(n, v)?);
            Ok(())
        },
    },
    Setting {
        key: "key_bits",
        default: Some("2048"),
        help: "RSA key size: 2048, 3072 or 4096",
        apply: |c, n, v| -> Applied {
            c.key_bits = match v.trim() {
                "2048" => 2048,
                "3072" => 3072,
                "4096" => 4096,
                _ => {
                    let problem = format!("expected 2048, 3072 or 4096, got {v:?}");
                    return Err(ConfigError::new(n, problem));
                }
            };
            Ok(())
        },
    },
    Setting {
        key: "access_ttl",
        default: Some("15m"),
        help: "access token lifetime (durations: 500ms, 90s, 15m, 2h, 30d)",
        apply: |c, n, v| -> Applied {
            c.access_ttl = dur(n, v, SEC)?;
            Ok(())
        },
    },
    Setting {
        key: "refresh_ttl",
        default: Some("30d"),
        help: "refresh token lifetime (at least the access token's)",
        apply: |c, n, v| -> Applied {
            c.refresh_ttl = dur(n, v, SEC)?;
            Ok(())
        },
    },
    Setting {
        key: "id_token_ttl",
        default: Some("15m"),
        help: "OpenID Connect ID token lifetime",
        apply: |c, n, v| -> Applied {
            c.id_token_ttl = dur(n, v, SEC)?;
            Ok(())
        },
    },
    Setting {
        key: "sso_ttl",
        default: Some("12h"),
        help: "lifetime of a browser sign-in at /login (the km_sso session)",
        apply: |c, n, v| -> Applied {
            c.sso_ttl = dur(n, v, SEC)?;
            Ok(())
        },
    },
    Setting {
        key: "rotation_cron",
        default: Some("0 0 3 * * Mon"),
        help: "key rotation schedule: sec min hour dom mon dow",
        apply: |c, n, v| -> Applied {
            c.rotation_cron = parse_cron(n, v)?;
            Ok(())
        },
    },
    Setting {
        key: "cleanup_cron",
        default: Some("0 */10 * * * *"),
        help: "cleanup schedule: sec min hour dom mon dow",
        apply: |c, n, v| -> Applied {
            c.cleanup_cron = parse_cron(n, v)?;
            Ok(())
        },
    },
    Setting {
        key: "jwks_max_age",
        default: Some("5m"),
        help: "Cache-Control max-age of the JWKS",
        apply: |c, n, v| -> Applied {
            c.jwks_max_age = dur(n, v, Duration::ZERO)?;
            Ok(())
        },
    },
    Setting {
        key: "leeway",
        default: Some("30s"),
        help: "clock skew allowed on exp and nbf",
        apply: |c, n, v| -> Applied {
            c.leeway = dur(n, v, Duration::ZERO)?;
            Ok(())
        },
    },
    Setting {
        key: "refresh_reuse_grace",
        default: Some("0s"),
        help: "window in which a retried refresh gets the same successor (0s: off)",
        apply: |c, n, v| -> Applied {
            c.refresh_reuse_grace = dur(n, v, Duration::ZERO)?;
            Ok(())
        },
    },
    Setting {
        key: "sync_interval",
        default: Some("500ms"),
        help: "how often other instances' keys and revocations are read",
        apply: |c, n, v| -> Applied {
            c.sync_interval = dur(n, v, Duration::from_millis(50))?;
            Ok(())
        },
    },
    Setting {
        key: "bootstrap_admin",
        default: None,
        help: "name:password of an admin created once at start when none exists",
        apply: |c, n, v| -> Applied {
            let Some((user, pass)) = v
                .split_once(':')
                .filter(|(u, p)| !u.is_empty() && !p.is_empty())
            else {
                return Err(ConfigError::new(n, "expected name:password"));
            };
            crate::users::validate_username(user).map_err(|p| ConfigError::new(n, p))?;
            crate::users::validate_password(pass).map_err(|p| ConfigError::new(n, p))?;
            c.bootstrap_admin = Some((user.to_string(), pass.to_string()));
            Ok(())
        },
    },
    Setting {
        key: "log_format",
        default: Some("text"),
        help: "text or json",
        apply: |c, n, v| -> Applied {
            c.log_format = match v {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                _ => {
                    return Err(ConfigError::new(
                        n,
                        format!("expected text or json, got {v:?}"),
                    ));
                }
            };
            Ok(())
        },
    },
    Setting {
        key: "cors_origins",
        default: None,
        help: "comma-separated origins allowed by CORS [default: none, CORS closed]",
        apply: |c, n, v| -> Applied {
            c.cors_origins = parse_origins(n, v)?;
            Ok(())
        },
    },
    Setting {
        key: "login_user_failures",
        default: Some("5"),
        help: "free failed logins per username, then 1 s, 2 s, 4 s … back-off",
        apply: |c, n, v| -> Applied {
            c.login_limits.user_free = count(n, v)?;
            Ok(())
        },
    },
    Setting {
        key: "login_lockout_max",
        default: Some("15m"),
        help: "the longest per-username back-off",
        apply: |c, n, v| -> Applied {
            c.login_limits.user_max_backoff = dur(n, v, SEC)?.as_secs() as i64;
            Ok(())
        },
    },
    Setting {
        key: "login_ip_failures",
        default: Some("20"),
        help: "failed logins per client address (IPv6: per /64) in the window",
        apply: |c, n, v| -> Applied {
            c.login_limits.ip_max = count(n, v)?;
            Ok(())
        },
    },
    Setting {
        key: "login_ip_window",
        default: Some("5m"),
        help: "the per-address window",
        apply: |c, n, v| -> Applied {
            c.login_limits.ip_window = dur(n, v, SEC)?.as_secs() as i64;
            Ok(())
        },
    },
    Setting {
        key: "request_timeout",
        default: Some("30s"),
        help: "a whole request must complete within this, or 408",
        apply: |c, n, v| -> Applied {
            c.request_timeout = dur(n, v, SEC)?;
            Ok(())
        },
    },
    Setting {
        key: "header_timeout",
        default: Some("10s"),
        help: "a new connection's first request head is due within this",
        apply: |c, n, v| -> Applied {
            c.header_timeout = dur(n, v, SEC)?;
            Ok(())
        },
    },
    Setting {
        key: "idle_timeout",
        default: Some("10s"),
        help: "a connection with no request in flight closes after this",
        apply: |c, n, v| -> Applied {
            c.idle_timeout = dur(n, v, SEC)?;
            Ok(())
        },
    },
    Setting {
        key: "max_connections_per_address",
        default: Some("256"),
        help: "connections held at once from one address (IPv6: one /64)",
        apply: |c, n, v| -> Applied {
            c.max_connections_per_address = count(n, v)?;
            Ok(())
        },
    },
    Setting {
        key: "trusted_proxies",
        default: None,
        help: "proxies whose X-Forwarded-For is believed: addresses or CIDRs [default: none]",
        apply: |c, n, v| -> Applied {
            c.trusted_proxies = crate::net::parse_cidrs(v).map_err(|p| ConfigError::new(n, p))?;
            Ok(())
        },
    },
    Setting {
        key: "audit_retention",
        default: Some("90d"),
        help: "audit events older than this are deleted by cleanup",
        apply: |c, n, v| -> Applied {
            c.audit_retention = dur(n, v, Duration::from_secs(60))?;
            Ok(())
        },
    },
    Setting {
        key: "metrics_bind",
        default: None,
        help: "serve /metrics only on this address [default: on the main listener]",
        apply: |c, n, v| -> Applied {
            c.metrics_bind = Some(addr(n, v, "127.0.0.1:9090")?);
            Ok(())
        },
    },
    Setting {
        key: "signer",
        default: Some("local"),
        help: "where new signing keys are made and kept: local (sealed with the KEK) or pkcs11",
        apply: |c, n, v| -> Applied {
            c.signer = crate::keys::Backend::parse(v.trim()).ok_or_else(|| {
                ConfigError::new(n, format!("expected local or pkcs11, got {v:?}"))
            })?;
            Ok(())
        },
    },
    Setting {
        key: "pkcs11_module",
        default: None,
        help: "path of the PKCS#11 module (.so) [default: none]",
        apply: |c, _, v| -> Applied {
            c.pkcs11_module = Some(PathBuf::from(v));
            Ok(())
        },
    },
    Setting {
        key: "pkcs11_token",
        default: None,
        help: "label of the PKCS#11 token that holds the keys [default: none]",
        apply: |c, _, v| -> Applied {
            c.pkcs11_token = Some(v.to_string());
            Ok(())
        },
    },
    Setting {
        key: "pkcs11_pin",
        default: None,
        help: "user PIN of the token; prefer pkcs11_pin_file [default: none]",
        apply: |c, _, v| -> Applied {
            c.pkcs11_pin = Some(zeroize::Zeroizing::new(v.to_string()));
            Ok(())
        },
    },
    Setting {
        key: "pkcs11_pin_file",
        default: None,
        help: "file holding the token's user PIN (one line) [default: none]",
        apply: |c, n, v| -> Applied {
            let both = ConfigError::new(n, "set the PIN or the PIN file, not both");
            c.pkcs11_pin.is_none().then_some(()).ok_or(both)?;
            let pin = std::fs::read_to_string(v)
                .map_err(|e| ConfigError::new(n, format!("cannot read {v}: {e}")))?;
            c.pkcs11_pin = Some(zeroize::Zeroizing::new(pin.trim_end().to_string()));
            Ok(())
        },
    },
    Setting {
        key: "tls_cert",
        default: None,
        help: "PEM certificate chain: serve HTTPS (with tls_key), reloaded on change [default: HTTP]",
        apply: |c, _, v| -> Applied {
            c.tls_cert = Some(PathBuf::from(v));
            Ok(())
        },
    },
    Setting {
        key: "tls_key",
        default: None,
        help: "PEM private key of tls_cert [default: none]",
        apply: |c, _, v| -> Applied {
            c.tls_key = Some(PathBuf::from(v));
            Ok(())
        },
    },
];
