//! Prometheus metrics (text exposition format 0.0.4), prefix `keymint_`. Counters are atomics
//! bumped on the hot path; request latencies are a `prometheus-client` histogram family keyed by
//! interned `&'static` labels (no allocation per request: measured as cheap as a hand-written
//! atomic histogram, ARCHITECTURE.md); key ages and denylist size are read at scrape time.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::tokens::Rejection;

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A latency series' labels: route template, method, status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Series {
    route: &'static str,
    method: &'static str,
    status: u16,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
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
pub struct Metrics {
    issued: [AtomicU64; 2],
    verify_failures: [AtomicU64; REASONS.len()],
    revoked_refusals: AtomicU64,
    logins: [AtomicU64; 3],
    rotations: AtomicU64,
    cleanup_runs: AtomicU64,
    cleanup_rows: AtomicU64,
    cleanup_last_ms: AtomicU64,
    http: Family<Series, Histogram, fn() -> Histogram>,
    registry: Registry,
    /// Route templates seen, each kept once for the process's life: the router's own
    /// templates plus "unmatched", a bounded set.
    routes: RwLock<HashMap<Box<str>, &'static str>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let http = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let mut registry = Registry::with_prefix("keymint");
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency, by route, method and status",
            http.clone(),
        );
        Self {
            issued: Default::default(),
            verify_failures: Default::default(),
            revoked_refusals: Default::default(),
            logins: Default::default(),
            rotations: Default::default(),
            cleanup_runs: Default::default(),
            cleanup_rows: Default::default(),
            cleanup_last_ms: Default::default(),
            http,
            registry,
            routes: Default::default(),
        }
    }
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

    /// The interned `&'static` form of a matched route template (never a raw path: bounded
    /// label cardinality, and no tokens or ids in labels).
    pub fn route(&self, template: &str) -> &'static str {
        if let Some(r) = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(template)
        {
            return r;
        }
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        routes
            .entry(template.into())
            .or_insert_with(|| Box::leak(template.to_string().into_boxed_str()))
    }

    /// Record one HTTP request.
    pub fn request(&self, route: &'static str, method: &'static str, status: u16, secs: f64) {
        let series = Series {
            route,
            method,
            status,
        };
        self.http.get_or_create(&series).observe(secs);
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
        // The histograms, in the crate's encoding less its OpenMetrics `# EOF` trailer.
        let mut h = String::new();
        if prometheus_client::encoding::text::encode(&mut h, &self.registry).is_ok() {
            o.push_str(h.trim_end().trim_end_matches("# EOF").trim_end());
            o.push('\n');
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
        let series = "route=\"/auth/me\",method=\"GET\",status=\"200\"";
        let bucket = |le: &str, n: u32| {
            format!("keymint_http_request_duration_seconds_bucket{{le=\"{le}\",{series}}} {n}\n")
        };
        for (le, n) in [
            ("0.0025", 0),
            ("0.005", 1),
            ("0.25", 1),
            ("0.5", 2),
            ("+Inf", 2),
        ] {
            assert!(text.contains(&bucket(le, n)), "{le} {n}: {text}");
        }
        assert!(text.contains(&format!(
            "keymint_http_request_duration_seconds_count{{{series}}} 2\n"
        )));
        assert!(!text.contains("# EOF"));
    }
}
