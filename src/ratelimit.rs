//! Failed-login throttling (SPEC section 6), per username and per client address, in memory
//! per instance.
//!
//! - Per username: the first `user_free` failures are free; after that each attempt must wait
//!   2^(n - user_free) seconds after the previous failure, capped at `user_max_backoff`.
//!   A success resets the count.
//! - Per address: at most `ip_max` failures in a sliding `ip_window`.
//! - Lock-out resistance: addresses that logged in successfully as a user in the last 30 days
//!   are exempt from that user's back-off (not from their own address limit), so an attacker
//!   failing on purpose cannot keep the user out of the devices they already use.
//!
//! Checks happen before the password is hashed, so a throttled attempt costs no argon2.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Limits, from configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub user_free: u32,
    pub user_max_backoff: i64,
    pub ip_max: u32,
    pub ip_window: i64,
}

#[derive(Default)]
struct UserState {
    failures: u32,
    last_failure: i64,
    trusted: VecDeque<(String, i64)>,
}

const TRUST_FOR: i64 = 30 * 86400;
const TRUSTED_MAX: usize = 8;

/// The limiter. Cheap to share.
pub struct LoginLimiter {
    limits: Limits,
    users: moka::sync::Cache<String, Arc<Mutex<UserState>>>,
    ips: moka::sync::Cache<String, Arc<Mutex<VecDeque<i64>>>>,
}

impl LoginLimiter {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            users: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_idle(Duration::from_secs(TRUST_FOR as u64))
                .build(),
            ips: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_idle(Duration::from_secs(limits.ip_window.max(1) as u64))
                .build(),
        }
    }

    fn user(&self, name: &str) -> Arc<Mutex<UserState>> {
        self.users
            .get_with(name.to_ascii_lowercase(), Default::default)
    }

    fn ip(&self, ip: &str) -> Arc<Mutex<VecDeque<i64>>> {
        self.ips.get_with(ip.to_string(), Default::default)
    }

    /// `Err(seconds)` when this attempt must wait; `Ok` when it may proceed.
    pub fn check(&self, username: &str, ip: Option<&str>, now: i64) -> Result<(), u64> {
        let l = self.limits;
        if let Some(ip) = ip {
            let slot = self.ip(ip);
            let mut q = slot.lock().unwrap_or_else(|p| p.into_inner());
            while q.front().is_some_and(|t| *t <= now - l.ip_window) {
                q.pop_front();
            }
            if q.len() as u32 >= l.ip_max {
                let oldest = q.front().copied().unwrap_or(now);
                return Err((oldest + l.ip_window - now).max(1) as u64);
            }
        }
        let slot = self.user(username);
        let u = slot.lock().unwrap_or_else(|p| p.into_inner());
        let trusted = ip.is_some_and(|ip| {
            u.trusted
                .iter()
                .any(|(t, at)| t == ip && now - at < TRUST_FOR)
        });
        if !trusted && u.failures >= l.user_free {
            let exp = (u.failures - l.user_free).min(30);
            let wait = (1i64 << exp).min(l.user_max_backoff);
            let until = u.last_failure + wait;
            if now < until {
                return Err((until - now) as u64);
            }
        }
        Ok(())
    }

    pub fn failure(&self, username: &str, ip: Option<&str>, now: i64) {
        if let Some(ip) = ip {
            self.ip(ip)
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_back(now);
        }
        let slot = self.user(username);
        let mut u = slot.lock().unwrap_or_else(|p| p.into_inner());
        u.failures = u.failures.saturating_add(1);
        u.last_failure = now;
    }

    pub fn success(&self, username: &str, ip: Option<&str>, now: i64) {
        let slot = self.user(username);
        let mut u = slot.lock().unwrap_or_else(|p| p.into_inner());
        u.failures = 0;
        if let Some(ip) = ip {
            u.trusted.retain(|(t, _)| t != ip);
            u.trusted.push_back((ip.to_string(), now));
            while u.trusted.len() > TRUSTED_MAX {
                u.trusted.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> LoginLimiter {
        LoginLimiter::new(Limits {
            user_free: 5,
            user_max_backoff: 900,
            ip_max: 20,
            ip_window: 300,
        })
    }

    #[test]
    fn user_backoff_grows_exponentially_and_caps() {
        let l = limiter();
        let t = 1_000;
        for i in 0..5 {
            assert!(l.check("alice", Some("10.0.0.1"), t + i).is_ok());
            l.failure("alice", Some(&format!("10.0.0.{i}")), t + i);
        }
        // Sixth attempt right away: 1 s back-off from the fifth failure.
        assert_eq!(l.check("alice", None, t + 4), Err(1));
        l.failure("alice", None, t + 5);
        assert_eq!(l.check("alice", None, t + 5), Err(2));
        for _ in 0..20 {
            l.failure("alice", None, t + 5);
        }
        assert_eq!(
            l.check("alice", None, t + 5),
            Err(900),
            "capped at 15 minutes"
        );
        assert!(l.check("alice", None, t + 905).is_ok());
        // Usernames are independent.
        assert!(l.check("bob", None, t + 5).is_ok());
    }

    #[test]
    fn trusted_address_is_exempt_and_success_resets() {
        let l = limiter();
        l.success("alice", Some("192.0.2.7"), 0);
        for i in 0..10 {
            l.failure("alice", Some(&format!("203.0.113.{i}")), 100);
        }
        assert!(
            l.check("alice", Some("203.0.113.99"), 100).is_err(),
            "attacker addresses wait"
        );
        assert!(
            l.check("alice", Some("192.0.2.7"), 100).is_ok(),
            "the user's own device does not"
        );
        l.success("alice", Some("192.0.2.7"), 101);
        assert!(
            l.check("alice", Some("203.0.113.99"), 101).is_ok(),
            "a success resets the count"
        );
    }

    #[test]
    fn address_window_slides() {
        let l = limiter();
        for i in 0..20 {
            l.failure(&format!("user{i}"), Some("198.51.100.1"), 1000 + i);
        }
        assert_eq!(l.check("fresh", Some("198.51.100.1"), 1019), Err(281));
        assert!(
            l.check("fresh", Some("198.51.100.1"), 1300).is_ok(),
            "the oldest failure left the window"
        );
        assert!(l.check("fresh", Some("198.51.100.2"), 1019).is_ok());
    }
}
