//! Failed-login throttling (SPEC section 6), per username and per client address, shared by
//! every instance through the `login_limits` table.
//!
//! - Per username: the first `user_free` failures are free; after that each attempt must wait
//!   2^(n - user_free) seconds after the previous one, capped at `user_max_backoff`. A
//!   success resets the count. Failures are remembered for a day after the last one.
//! - Per address (IPv6: per /64): at most `ip_max` attempts that failed in a sliding
//!   `ip_window`.
//! - Lock-out resistance: addresses that logged in successfully as a user in the last 30 days
//!   are exempt from that user's back-off (not from their own address limit), so an attacker
//!   failing on purpose cannot keep the user out of the devices they already use.
//!
//! An attempt is counted *before* the password is hashed ([`LoginLimiter::begin`] reserves it
//! by compare-and-swap on the row's `version`), so of N concurrent guesses at most the free
//! allowance reaches argon2; a success gives its reservation back. A throttled attempt costs
//! two indexed reads and no write.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use crate::db::entities::login_limits::{self, Column as L, Entity as Limit};
use crate::error::{Error, ErrorCode, Result};

/// Limits, from configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub user_free: u32,
    pub user_max_backoff: i64,
    pub ip_max: u32,
    pub ip_window: i64,
}

const TRUST_FOR: i64 = 30 * 86400;
const TRUSTED_MAX: usize = 8;
/// How long a username's failure count outlives its last failure.
const FAILURES_KEPT: i64 = 86400;
/// Compare-and-swap attempts before giving up (only under extreme contention on one key).
const CAS_TRIES: usize = 64;

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

    fn user_expiry(&self, u: &UserState) -> i64 {
        let trust = u.trusted.iter().map(|(_, at)| at + TRUST_FOR).max();
        (u.last + FAILURES_KEPT).max(trust.unwrap_or(0))
    }

    fn addr_expiry(&self, a: &AddrState) -> i64 {
        a.at.iter().max().copied().unwrap_or(0) + self.ip_window
    }
}

/// A reserved attempt, to be resolved with [`LoginLimiter::succeeded`] (a failure needs
/// nothing more: it was counted when reserved).
#[derive(Debug)]
pub struct Attempt {
    user: String,
    addr: Option<String>,
    at: i64,
}

/// The limiter over the shared table.
pub struct LoginLimiter {
    limits: Limits,
    db: DatabaseConnection,
}

fn user_key(username: &str) -> String {
    format!("u:{}", username.to_ascii_lowercase())
}

fn addr_key(addr: &str) -> String {
    format!("a:{addr}")
}

impl LoginLimiter {
    pub fn new(limits: Limits, db: DatabaseConnection) -> Self {
        Self { limits, db }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Count an attempt for `username` from `addr` (a [`crate::net::limit_key`]) before any
    /// hashing: `Ok(Err(_))` when a limit refuses it, in which case nothing was counted.
    pub async fn begin(
        &self,
        username: &str,
        addr: Option<&str>,
        now: i64,
    ) -> Result<std::result::Result<Attempt, Throttled>> {
        let l = self.limits;
        let ukey = user_key(username);
        // Read-only checks first, so a flood of throttled attempts writes nothing.
        if let Some(a) = addr {
            let (_, mut s) = self.load::<AddrState>(&addr_key(a)).await?;
            if let Some(wait) = l.addr_wait(&mut s, now) {
                return Ok(Err(Throttled {
                    by: ThrottledBy::Address,
                    wait,
                }));
            }
        }
        let (_, u) = self.load::<UserState>(&ukey).await?;
        if let Some(wait) = l.user_wait(&u, addr, now) {
            return Ok(Err(Throttled {
                by: ThrottledBy::Username,
                wait,
            }));
        }
        // Reserve: address first, then username; a refused username gives the address back.
        if let Some(a) = addr {
            let reserved = self
                .swap(&addr_key(a), |s: &mut AddrState| {
                    match l.addr_wait(s, now) {
                        Some(wait) => Err(Throttled {
                            by: ThrottledBy::Address,
                            wait,
                        }),
                        None => {
                            s.at.push(now);
                            Ok(l.addr_expiry(s))
                        }
                    }
                })
                .await?;
            if let Err(t) = reserved {
                return Ok(Err(t));
            }
        }
        let reserved = self
            .swap(&ukey, |u: &mut UserState| match l.user_wait(u, addr, now) {
                Some(wait) => Err(Throttled {
                    by: ThrottledBy::Username,
                    wait,
                }),
                None => {
                    u.failures = u.failures.saturating_add(1);
                    u.last = now;
                    Ok(l.user_expiry(u))
                }
            })
            .await?;
        let attempt = Attempt {
            user: ukey,
            addr: addr.map(str::to_string),
            at: now,
        };
        if let Err(t) = reserved {
            self.release_addr(&attempt).await?;
            return Ok(Err(t));
        }
        Ok(Ok(attempt))
    }

    /// The attempt logged in: reset the username's failures, trust its address, and give the
    /// address its reservation back.
    pub async fn succeeded(&self, attempt: &Attempt, now: i64) -> Result<()> {
        let l = self.limits;
        let addr = attempt.addr.clone();
        self.swap(&attempt.user, |u: &mut UserState| {
            u.failures = 0;
            if let Some(a) = &addr {
                u.trusted.retain(|(t, _)| t != a);
                u.trusted.push((a.clone(), now));
                if u.trusted.len() > TRUSTED_MAX {
                    u.trusted.remove(0);
                }
            }
            Ok::<_, ()>(l.user_expiry(u))
        })
        .await?
        .ok();
        self.release_addr(attempt).await
    }

    async fn release_addr(&self, attempt: &Attempt) -> Result<()> {
        let Some(a) = &attempt.addr else {
            return Ok(());
        };
        let (l, at) = (self.limits, attempt.at);
        self.swap(&addr_key(a), |s: &mut AddrState| {
            if let Some(i) = s.at.iter().rposition(|t| *t == at) {
                s.at.remove(i);
            }
            Ok::<_, ()>(l.addr_expiry(s))
        })
        .await?
        .ok();
        Ok(())
    }

    async fn load<S: for<'de> Deserialize<'de> + Default>(&self, key: &str) -> Result<(i64, S)> {
        Ok(
            match Limit::find_by_id(key.to_string()).one(&self.db).await? {
                // A state we cannot read is treated as empty rather than failing every login.
                Some(row) => (
                    row.version,
                    serde_json::from_str(&row.state).unwrap_or_default(),
                ),
                None => (0, S::default()),
            },
        )
    }

    /// Read-modify-write `key` by compare-and-swap on its version. `f` returns the row's new
    /// expiry, or `Err` to leave the row unchanged.
    async fn swap<S, T>(
        &self,
        key: &str,
        f: impl Fn(&mut S) -> std::result::Result<i64, T>,
    ) -> Result<std::result::Result<(), T>>
    where
        S: Serialize + for<'de> Deserialize<'de> + Default,
    {
        for _ in 0..CAS_TRIES {
            let (version, mut state) = self.load::<S>(key).await?;
            let expires = match f(&mut state) {
                Ok(e) => e,
                Err(t) => return Ok(Err(t)),
            };
            let json = serde_json::to_string(&state).map_err(Error::internal)?;
            if version == 0 {
                let row = login_limits::ActiveModel {
                    key: Set(key.to_string()),
                    version: Set(1),
                    state: Set(json),
                    expires_at: Set(expires),
                };
                match Limit::insert(row).exec_without_returning(&self.db).await {
                    Ok(_) => return Ok(Ok(())),
                    Err(e) if crate::db::is_unique_violation(&e) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let changed = Limit::update_many()
                .col_expr(L::Version, Expr::value(version + 1))
                .col_expr(L::State, Expr::value(json))
                .col_expr(L::ExpiresAt, Expr::value(expires))
                .filter(L::Key.eq(key))
                .filter(L::Version.eq(version))
                .exec(&self.db)
                .await?
                .rows_affected;
            if changed == 1 {
                return Ok(Ok(()));
            }
        }
        Err(Error::new(
            ErrorCode::ServiceUnavailable,
            "login throttling is under heavy contention; try again",
        ))
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
