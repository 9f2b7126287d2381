//! Counters an application can export: verifications by outcome, JWKS fetches, feed polls.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::claims::Claims;
use crate::error::VerifyError;
use crate::jwks::Jwks;
use crate::revocations::Follower;

#[derive(Default)]
pub(crate) struct Counters {
    verified: AtomicU64,
    rejected: [AtomicU64; VerifyError::REASONS.len()],
    pub jwks_fetches: AtomicU64,
    pub jwks_not_modified: AtomicU64,
    pub jwks_fetch_failures: AtomicU64,
    pub unknown_kid_refetches: AtomicU64,
    pub revocation_polls: AtomicU64,
    pub revocation_poll_failures: AtomicU64,
}

/// A snapshot of a verifier's counters and gauges ([`crate::Verifier::stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tokens accepted.
    pub verified: u64,
    /// Tokens refused, by [`VerifyError::reason`], in the order of [`VerifyError::REASONS`].
    pub rejected: Vec<(&'static str, u64)>,
    /// JWKS requests sent (background refreshes, refetches and the first fetch).
    pub jwks_fetches: u64,
    /// JWKS requests answered 304 Not Modified.
    pub jwks_not_modified: u64,
    /// JWKS requests that failed (network, status, or a body without RS256 keys).
    pub jwks_fetch_failures: u64,
    /// Refetches caused by unknown kids (at most one per cooldown).
    pub unknown_kid_refetches: u64,
    /// Keys in the current set.
    pub keys: usize,
    /// Kids remembered as missing.
    pub missing_kids: usize,
    /// Time since the issuer last confirmed the key set.
    pub jwks_age: Duration,
    /// Revocation feed polls, and how many failed.
    pub revocation_polls: u64,
    /// Revocation feed polls that failed.
    pub revocation_poll_failures: u64,
    /// Live revocations known.
    pub revocations: usize,
    /// Time since the feed was last read to its end (`None` without a feed).
    pub revocations_age: Option<Duration>,
}

impl Counters {
    pub fn record(&self, result: &Result<Claims, VerifyError>) {
        match result {
            Ok(_) => self.verified.fetch_add(1, Ordering::Relaxed),
            Err(e) => self.rejected[e.index()].fetch_add(1, Ordering::Relaxed),
        };
    }

    pub fn snapshot(&self, jwks: &Jwks, feed: Option<&Follower>) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            verified: get(&self.verified),
            rejected: VerifyError::REASONS
                .iter()
                .zip(&self.rejected)
                .map(|(r, c)| (*r, get(c)))
                .collect(),
            jwks_fetches: get(&self.jwks_fetches),
            jwks_not_modified: get(&self.jwks_not_modified),
            jwks_fetch_failures: get(&self.jwks_fetch_failures),
            unknown_kid_refetches: get(&self.unknown_kid_refetches),
            keys: jwks.key_count(),
            missing_kids: jwks.missing_count(),
            jwks_age: jwks.age(),
            revocation_polls: get(&self.revocation_polls),
            revocation_poll_failures: get(&self.revocation_poll_failures),
            revocations: feed.map_or(0, Follower::entry_count),
            revocations_age: feed.map(Follower::age),
        }
    }
}

impl Stats {
    /// Tokens refused for `reason` (see [`VerifyError::reason`]).
    pub fn rejected_for(&self, reason: &str) -> u64 {
        self.rejected
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// Tokens refused for any reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(|(_, n)| n).sum()
    }

    /// The Prometheus text exposition of these figures, names prefixed `keymint_verify_`.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, f64)]| {
            let _ = writeln!(out, "# HELP keymint_verify_{name} {help}");
            let _ = writeln!(out, "# TYPE keymint_verify_{name} {kind}");
            for (labels, v) in lines {
                let _ = writeln!(out, "keymint_verify_{name}{labels} {v}");
            }
        };
        let mut outcomes = vec![("{outcome=\"ok\"}".to_owned(), self.verified as f64)];
        for (r, n) in &self.rejected {
            outcomes.push((format!("{{outcome=\"{r}\"}}"), *n as f64));
        }
        metric(
            "tokens_total",
            "counter",
            "Tokens verified, by outcome.",
            &outcomes,
        );
        let mut plain = vec![
            (
                "jwks_fetches_total",
                "counter",
                "JWKS requests sent.",
                self.jwks_fetches as f64,
            ),
            (
                "jwks_not_modified_total",
                "counter",
                "JWKS requests answered 304.",
                self.jwks_not_modified as f64,
            ),
            (
                "jwks_fetch_failures_total",
                "counter",
                "JWKS requests that failed.",
                self.jwks_fetch_failures as f64,
            ),
            (
                "unknown_kid_refetches_total",
                "counter",
                "JWKS refetches caused by unknown kids.",
                self.unknown_kid_refetches as f64,
            ),
            (
                "jwks_keys",
                "gauge",
                "Keys in the current set.",
                self.keys as f64,
            ),
            (
                "jwks_age_seconds",
                "gauge",
                "Time since the issuer last confirmed the key set.",
                self.jwks_age.as_secs_f64(),
            ),
            (
                "revocation_polls_total",
                "counter",
                "Revocation feed polls.",
                self.revocation_polls as f64,
            ),
            (
                "revocation_poll_failures_total",
                "counter",
                "Revocation feed polls that failed.",
                self.revocation_poll_failures as f64,
            ),
            (
                "revocations",
                "gauge",
                "Live revocations known.",
                self.revocations as f64,
            ),
        ];
        if let Some(age) = self.revocations_age {
            plain.push((
                "revocations_age_seconds",
                "gauge",
                "Time since the feed was last read to its end.",
                age.as_secs_f64(),
            ));
        }
        for (name, kind, help, v) in plain {
            metric(name, kind, help, &[(String::new(), v)]);
        }
        out
    }
}
