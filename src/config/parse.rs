//! Parsers for setting values: each returns the typed value or one line saying what is wrong.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;

use super::ConfigError;

pub(super) fn parse_issuer(name: &str, v: &str) -> Result<String, ConfigError> {
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

pub(super) fn parse_origins(name: &str, v: &str) -> Result<Vec<String>, ConfigError> {
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

pub(super) fn parse_kek(name: &str, v: &str) -> Result<[u8; 32], ConfigError> {
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

pub(super) fn parse_cron(name: &str, v: &str) -> Result<String, ConfigError> {
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

pub(super) type Applied = Result<(), ConfigError>;

pub(super) fn dur(name: &str, v: &str, min: Duration) -> Result<Duration, ConfigError> {
    let d = parse_duration(v).map_err(|p| ConfigError::new(name, p))?;
    if d < min {
        return Err(ConfigError::new(
            name,
            format!("must be at least {}", format_duration(min)),
        ));
    }
    Ok(d)
}

pub(super) fn count(name: &str, v: &str) -> Result<u32, ConfigError> {
    v.trim()
        .parse::<u32>()
        .ok()
        .filter(|c| *c >= 1)
        .ok_or_else(|| {
            ConfigError::new(name, format!("expected a positive whole number, got {v:?}"))
        })
}

pub(super) fn addr(name: &str, v: &str, example: &str) -> Result<SocketAddr, ConfigError> {
    v.trim().parse().map_err(|_| {
        ConfigError::new(
            name,
            format!("expected host:port like {example}, got {v:?}"),
        )
    })
}

pub(super) const SEC: Duration = Duration::from_secs(1);
