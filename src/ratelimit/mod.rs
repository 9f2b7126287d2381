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
//! in a transaction holding the row's lock, so concurrent attempts on one key queue), so of N
//! concurrent guesses at most the free allowance reaches argon2; a success gives its
//! reservation back. A throttled attempt costs at most two indexed reads and no write.

mod policy;

use policy::TRUSTED_MAX;
pub use policy::{AddrState, Limits, Throttled, ThrottledBy, UserState};

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use crate::db::entities::login_limits::{self, Column as L, Entity as Limit};
use crate::error::{Error, Result};

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
    /// Refusals this instance decided in the last second (key → refused until): a flood of
    /// refused attempts is then answered from memory instead of two database reads each. A
    /// refusal lifted elsewhere (a success resets a username) is seen here within a second.
    refused: moka::sync::Cache<String, i64>,
}

/// Refusals remembered at once; past that the oldest are forgotten (and re-read).
const REFUSED_MAX: u64 = 10_000;

/// A row's state; one we cannot read is treated as empty rather than failing every login.
fn state_of<S: for<'de> Deserialize<'de> + Default>(text: &str) -> S {
    serde_json::from_str(text).unwrap_or_default()
}

fn user_key(username: &str) -> String {
    format!("u:{}", username.to_ascii_lowercase())
}

fn addr_key(addr: &str) -> String {
    format!("a:{addr}")
}

impl LoginLimiter {
    pub fn new(limits: Limits, db: DatabaseConnection) -> Self {
        let refused = moka::sync::Cache::builder()
            .max_capacity(REFUSED_MAX)
            .time_to_live(std::time::Duration::from_secs(1))
            .build();
        Self {
            limits,
            db,
            refused,
        }
    }

    /// A refusal of `key` still in force at `now`, from memory.
    fn remembered(&self, key: &str, by: ThrottledBy, now: i64) -> Option<Throttled> {
        let until = self.refused.get(key)?;
        (until > now).then(|| Throttled {
            by,
            wait: (until - now) as u64,
        })
    }

    fn remember(&self, key: String, t: Throttled, now: i64) -> Throttled {
        self.refused.insert(key, now + t.wait as i64);
        t
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
        // Read-only checks first, so a flood of throttled attempts writes nothing (and, once
        // refused, reads nothing either for a second).
        let ucache = format!("{ukey}|{}", addr.unwrap_or("-"));
        if let Some(a) = addr {
            let akey = addr_key(a);
            if let Some(t) = self.remembered(&akey, ThrottledBy::Address, now) {
                return Ok(Err(t));
            }
            let mut s = self.load::<AddrState>(&akey).await?;
            if let Some(wait) = l.addr_wait(&mut s, now) {
                let t = Throttled {
                    by: ThrottledBy::Address,
                    wait,
                };
                return Ok(Err(self.remember(akey, t, now)));
            }
        }
        if let Some(t) = self.remembered(&ucache, ThrottledBy::Username, now) {
            return Ok(Err(t));
        }
        let u = self.load::<UserState>(&ukey).await?;
        if let Some(wait) = l.user_wait(&u, addr, now) {
            let t = Throttled {
                by: ThrottledBy::Username,
                wait,
            };
            return Ok(Err(self.remember(ucache, t, now)));
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

    /// The state of `key` (empty when there is no row).
    async fn load<S: for<'de> Deserialize<'de> + Default>(&self, key: &str) -> Result<S> {
        let row = Limit::find_by_id(key.to_string()).one(&self.db).await?;
        Ok(row.map(|r| state_of(&r.state)).unwrap_or_default())
    }

    /// Read-modify-write `key` in one transaction that holds the row: its first statements
    /// write (create the row if missing, then touch it), which locks the row on Postgres and
    /// takes the write lock on SQLite, so concurrent attempts on one key queue instead of
    /// retrying. `f` returns the row's new expiry, or `Err` to leave it unchanged (rolled back).
    async fn swap<S, T>(
        &self,
        key: &str,
        f: impl Fn(&mut S) -> std::result::Result<i64, T>,
    ) -> Result<std::result::Result<(), T>>
    where
        S: Serialize + for<'de> Deserialize<'de> + Default,
    {
        let txn = self.db.begin().await?;
        let blank = login_limits::ActiveModel {
            key: Set(key.to_string()),
            version: Set(0),
            state: Set("{}".into()),
            expires_at: Set(0),
        };
        let created = Limit::insert(blank)
            .on_conflict(OnConflict::column(L::Key).do_nothing().to_owned())
            .exec_without_returning(&txn)
            .await;
        match created {
            Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => {}
            Err(e) => return Err(e.into()),
        }
        Limit::update_many()
            .col_expr(L::Version, Expr::col(L::Version))
            .filter(L::Key.eq(key))
            .exec(&txn)
            .await?;
        let row = Limit::find_by_id(key.to_string())
            .one(&txn)
            .await?
            .ok_or_else(|| Error::internal("login_limits row vanished inside its transaction"))?;
        let mut state: S = state_of(&row.state);
        let expires = match f(&mut state) {
            Ok(e) => e,
            // Dropping the transaction rolls back, the blank row with it.
            Err(t) => return Ok(Err(t)),
        };
        let json = serde_json::to_string(&state).map_err(Error::internal)?;
        Limit::update_many()
            .col_expr(L::Version, Expr::value(row.version + 1))
            .col_expr(L::State, Expr::value(json))
            .col_expr(L::ExpiresAt, Expr::value(expires))
            .filter(L::Key.eq(key))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(Ok(()))
    }
}
