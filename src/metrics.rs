//! Prometheus metrics (text exposition format 0.0.4), prefix `keymint_`. Counters are atomics
//! bumped on the hot path; per-route latency histograms sit behind one short mutex; key ages and
//! denylist size are read at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::tokens::Rejection;

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Kinds of issued token.
#[derive(Clone, Copy)]
pub enum Issued {
    Access,
    Refresh,
}

/// Login outcomes.
#[derive(Clone, Copy)]
pub enum Login {
    Ok,
    Failed,
    Throttled,
}

const REASONS: [Rejection; 9] = [
    Rejection::TooLarge,
    Rejection::Malformed,
    Rejection::Algorithm,
    Rejection::WrongType,
    Rejection::UnknownKid,
    Rejection::Signature,
    Rejection::Claims,
    Rejection::NotYetValid,
    Rejection::Expired,
];

/// The registry. One per `App`.
#[derive(Default)]
pub struct Metrics {
    issued: [AtomicU64; 2],
    verify_failures: [AtomicU64; REASONS.len()],
    revoked_refusals: AtomicU64,
    logins: [AtomicU64; 3],
    rotations: AtomicU64,
    cleanup_runs: AtomicU64,
    cleanup_rows: AtomicU64,
    cleanup_last_ms: AtomicU64,
    http: Mutex<BTreeMap<(String, &'static str, u16), Histogram>>,
}

impl Metrics {
    pub fn issued(&self, kind: Issued) {
        self.issued[kind as usize].fetch_add(1, Relaxed);
    }

    pub fn verify_failed(&self, r: Rejection) {
        if let Some(i) = REASONS.iter().position(|x| *x == r) {
            self.verify_failures[i].fetch_add(1, Relaxed);
        }
    }

    pub fn revoked_refused(&self) {
        self.revoked_refusals.fetch_add(1, Relaxed);
    }

    pub fn login(&self, outcome: Login) {
        self.logins[outcome as usize].fetch_add(1, Relaxed);
    }

    pub fn rotated(&self) {
        self.rotations.fetch_add(1, Relaxed);
    }

    pub fn cleanup(&self, rows: u64, ms: u64) {
        self.cleanup_runs.fetch_add(1, Relaxed);
        self.cleanup_rows.fetch_add(rows, Relaxed);
        self.cleanup_last_ms.store(ms, Relaxed);
    }

    /// Record one HTTP request. `route` is the matched route template, never the raw path
    /// (bounded label cardinality, and no tokens or ids in labels).
    pub fn request(&self, route: &str, method: &'static str, status: u16, secs: f64) {
        let mut map = self.http.lock().unwrap_or_else(|p| p.into_inner());
        let h = match map.get_mut(&(route.to_string(), method, status)) {
            Some(h) => h,
            None => map.entry((route.to_string(), method, status)).or_default(),
        };
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Render everything. `key_ages` is (kid, purpose, state, age seconds); `denylist` the
    /// number of live revocations held in memory.
    pub fn render(&self, key_ages: &[(String, &str, &str, i64)], denylist: u64) -> String {
        let mut o = String::with_capacity(4096);
        let c = |o: &mut String, name: &str, help: &str, kind: &str| {
            let _ = writeln!(
                o,
                "# HELP keymint_{name} {help}\n# TYPE keymint_{name} {kind}"
            );
        };
        c(
            &mut o,
            "tokens_issued_total",
            "Tokens signed, by kind.",
            "counter",
        );
        for (i, k) in ["access", "refresh"].iter().enumerate() {
            let _ = writeln!(
                o,
                "keymint_tokens_issued_total{{kind=\"{k}\"}} {}",
                self.issued[i].load(Relaxed)
            );
        }
        c(
            &mut o,
            "token_verification_failures_total",
            "Access and refresh tokens refused, by reason.",
            "counter",
        );
        for (i, r) in REASONS.iter().enumerate() {
            let _ = writeln!(
                o,
                "keymint_token_verification_failures_total{{reason=\"{}\"}} {}",
                r.as_str(),
                self.verify_failures[i].load(Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "keymint_token_verification_failures_total{{reason=\"revoked\"}} {}",
            self.revoked_refusals.load(Relaxed)
        );
        c(
            &mut o,
            "logins_total",
            "Password logins (both /auth/login and the password grant), by outcome.",
            "counter",
        );
        for (i, k) in ["ok", "failed", "throttled"].iter().enumerate() {
            let _ = writeln!(
                o,
                "keymint_logins_total{{outcome=\"{k}\"}} {}",
                self.logins[i].load(Relaxed)
            );
        }
        c(
            &mut o,
            "key_rotations_total",
            "Key rotations performed by this instance (per purpose).",
            "counter",
        );
        let _ = writeln!(
            o,
            "keymint_key_rotations_total {}",
            self.rotations.load(Relaxed)
        );
        c(
            &mut o,
            "key_age_seconds",
            "Age of each verifying key, by kid (access keys only), purpose and state.",
            "gauge",
        );
        for (kid, purpose, state, age) in key_ages {
            let kid = if kid.is_empty() {
                String::new()
            } else {
                format!("kid=\"{kid}\",")
            };
            let _ = writeln!(
                o,
                "keymint_key_age_seconds{{{kid}purpose=\"{purpose}\",state=\"{state}\"}} {age}"
            );
        }
        c(
            &mut o,
            "revocations",
            "Live revocations held in this instance's denylist.",
            "gauge",
        );
        let _ = writeln!(o, "keymint_revocations {denylist}");
        c(
            &mut o,
            "cleanup_runs_total",
            "Cleanup passes run by this instance.",
            "counter",
        );
        let _ = writeln!(
            o,
            "keymint_cleanup_runs_total {}",
            self.cleanup_runs.load(Relaxed)
        );
        c(
            &mut o,
            "cleanup_rows_removed_total",
            "Rows removed by cleanup.",
            "counter",
        );
        let _ = writeln!(
            o,
            "keymint_cleanup_rows_removed_total {}",
            self.cleanup_rows.load(Relaxed)
        );
        c(
            &mut o,
            "cleanup_last_duration_seconds",
            "Duration of the last cleanup pass.",
            "gauge",
        );
        let _ = writeln!(
            o,
            "keymint_cleanup_last_duration_seconds {}",
            self.cleanup_last_ms.load(Relaxed) as f64 / 1000.0
        );
        c(
            &mut o,
            "http_request_duration_seconds",
            "HTTP request latency, by route, method and status.",
            "histogram",
        );
        let map = self.http.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for ((route, method, status), h) in map {
            let labels = format!("route=\"{route}\",method=\"{method}\",status=\"{status}\"");
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "keymint_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                o,
                "keymint_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                o,
                "keymint_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                o,
                "keymint_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        o
    }
}

/// The Prometheus text of `app`: its counters, plus key ages and the denylist size read now.
/// Refresh-key kids are never published, so they are not shown here either: only the age of
/// the oldest refresh key per state.
pub async fn exposition(app: &crate::state::App) -> crate::error::Result<String> {
    use crate::keys::{KeyState, Purpose};
    let now = app.now();
    let keys = app.keys.list().await?;
    let live = keys
        .iter()
        .filter(|k| k.state != KeyState::Revoked && k.expires_at.is_none_or(|e| e > now));
    let mut ages: Vec<(String, &str, &str, i64)> = Vec::new();
    for k in live {
        let age = now - k.created_at;
        if k.purpose == Purpose::Access {
            ages.push((k.kid.clone(), k.purpose.as_str(), k.state.as_str(), age));
        } else if let Some(e) = ages
            .iter_mut()
            .find(|e| e.0.is_empty() && e.2 == k.state.as_str())
        {
            e.3 = e.3.max(age);
        } else {
            ages.push((String::new(), k.purpose.as_str(), k.state.as_str(), age));
        }
    }
    Ok(app.metrics.render(&ages, app.denylist.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.issued(Issued::Access);
        m.login(Login::Failed);
        m.verify_failed(Rejection::Expired);
        m.request("/auth/me", "GET", 200, 0.003);
        m.request("/auth/me", "GET", 200, 0.3);
        let text = m.render(&[("k1".into(), "access", "active", 42)], 7);
        assert!(text.contains("keymint_tokens_issued_total{kind=\"access\"} 1"));
        assert!(text.contains("keymint_logins_total{outcome=\"failed\"} 1"));
        assert!(text.contains("keymint_token_verification_failures_total{reason=\"expired\"} 1"));
        assert!(text.contains(
            "keymint_key_age_seconds{kid=\"k1\",purpose=\"access\",state=\"active\"} 42"
        ));
        assert!(text.contains("keymint_revocations 7"));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("le=\"0.5\"} 2"));
        assert!(text.contains("route=\"/auth/me\",method=\"GET\",status=\"200\",le=\"+Inf\"} 2"));
    }
}
