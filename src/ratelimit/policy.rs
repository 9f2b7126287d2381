//! The throttling policy, pure: per-username exponential back-off with trusted addresses, and a
//! sliding per-address window. No storage here; `LoginLimiter` applies it to shared rows.

use serde::{Deserialize, Serialize};

/// Limits, from configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub user_free: u32,
    pub user_max_backoff: i64,
    pub ip_max: u32,
    pub ip_window: i64,
}

pub(super) const TRUST_FOR: i64 = 30 * 86400;
pub(super) const TRUSTED_MAX: usize = 8;
/// How long a username's failure count outlives its last failure.
pub(super) const FAILURES_KEPT: i64 = 86400;

/// Throttling state of one username.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserState {
    pub failures: u32,
    pub last: i64,
    /// (address key, last successful login there).
    pub trusted: Vec<(String, i64)>,
}

/// Throttling state of one address: the times of its counted attempts in the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AddrState {
    pub at: Vec<i64>,
}

/// Which limit refused an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottledBy {
    Username,
    Address,
}

/// A refused attempt: who refused it and how long to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub by: ThrottledBy,
    pub wait: u64,
}

impl Limits {
    /// Seconds `addr` must wait before the user's next attempt, if any.
    pub fn user_wait(&self, u: &UserState, addr: Option<&str>, now: i64) -> Option<u64> {
        let trusted = addr.is_some_and(|a| {
            u.trusted
                .iter()
                .any(|(t, at)| t == a && now - at < TRUST_FOR)
        });
        if trusted || u.failures < self.user_free || now - u.last >= FAILURES_KEPT {
            return None;
        }
        let exp = (u.failures - self.user_free).min(30);
        let until = u.last + (1i64 << exp).min(self.user_max_backoff);
        (now < until).then(|| (until - now) as u64)
    }

    /// Seconds the address must wait, if any (after dropping attempts out of the window).
    pub fn addr_wait(&self, a: &mut AddrState, now: i64) -> Option<u64> {
        a.at.retain(|t| *t > now - self.ip_window);
        if a.at.len() as u32 >= self.ip_max {
            let oldest = a.at.iter().min().copied().unwrap_or(now);
            return Some((oldest + self.ip_window - now).max(1) as u64);
        }
        None
    }

    pub(super) fn user_expiry(&self, u: &UserState) -> i64 {
        let trust = u.trusted.iter().map(|(_, at)| at + TRUST_FOR).max();
        (u.last + FAILURES_KEPT).max(trust.unwrap_or(0))
    }

    pub(super) fn addr_expiry(&self, a: &AddrState) -> i64 {
        a.at.iter().max().copied().unwrap_or(0) + self.ip_window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        user_free: 5,
        user_max_backoff: 900,
        ip_max: 20,
        ip_window: 300,
    };

    #[test]
    fn user_backoff_grows_exponentially_and_caps() {
        let mut u = UserState::default();
        let t = 1_000;
        for _ in 0..5 {
            assert_eq!(L.user_wait(&u, None, t), None);
            u.failures += 1;
            u.last = t;
        }
        assert_eq!(L.user_wait(&u, None, t), Some(1), "1 s after the fifth");
        u.failures += 1;
        assert_eq!(L.user_wait(&u, None, t), Some(2));
        u.failures += 20;
        assert_eq!(L.user_wait(&u, None, t), Some(900), "capped at 15 minutes");
        assert_eq!(L.user_wait(&u, None, t + 900), None);
    }

    #[test]
    fn trusted_address_is_exempt() {
        let u = UserState {
            failures: 10,
            last: 100,
            trusted: vec![("192.0.2.7".into(), 0)],
        };
        assert!(L.user_wait(&u, Some("203.0.113.99"), 100).is_some());
        assert_eq!(L.user_wait(&u, Some("192.0.2.7"), 100), None);
        let later = UserState {
            last: TRUST_FOR + 1,
            ..u
        };
        assert!(
            L.user_wait(&later, Some("192.0.2.7"), TRUST_FOR + 1)
                .is_some(),
            "trust lasts 30 days"
        );
    }

    #[test]
    fn address_window_slides() {
        let mut a = AddrState {
            at: (0..20).map(|i| 1000 + i).collect(),
        };
        assert_eq!(L.addr_wait(&mut a, 1019), Some(281));
        assert_eq!(
            L.addr_wait(&mut a, 1300),
            None,
            "the oldest left the window"
        );
        assert_eq!(a.at.len(), 19);
    }
}
