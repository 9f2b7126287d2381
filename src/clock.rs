//! Where "now" comes from. Production reads the system clock; tests move time forward
//! (`advance`) instead of sleeping, so back-offs, expiries and cron ticks take no wall time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Unix seconds from the system clock, shifted by an offset that only tests change; or, for
/// tests whose outcome must not depend on how fast the machine is, a clock that stands still
/// until advanced.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
    frozen: bool,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that reads `at` until `advance` moves it (tests only).
    pub fn frozen_at(at: i64) -> Self {
        Self {
            offset: Arc::new(AtomicI64::new(at)),
            frozen: true,
        }
    }

    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        let offset = self.offset.load(Ordering::Relaxed);
        if self.frozen {
            offset
        } else {
            system_now() + offset
        }
    }

    /// Move this clock (and every component sharing it) `secs` seconds forward.
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

/// The wall clock in Unix seconds. The app reads time through its [`Clock`]; this is for
/// what has no app (tests, tools).
pub fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_is_shared_by_clones() {
        let c = Clock::system();
        let d = c.clone();
        let before = d.now();
        c.advance(3600);
        assert!(d.now() >= before + 3600 && d.now() <= before + 3601);
    }

    #[test]
    fn a_frozen_clock_moves_only_when_advanced() {
        let c = Clock::frozen_at(1_000);
        assert_eq!(c.now(), 1_000);
        c.clone().advance(5);
        assert_eq!(c.now(), 1_005);
    }
}
