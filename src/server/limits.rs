//! Connection limits: a cap per client address (IPv6 per /64; trusted proxies exempt) and a
//! global cap below the process's file-descriptor limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::{FD_RESERVE, MAX_CONNECTIONS};
use crate::state::App;

/// Connection-level limits, shared by the listeners of one process.
#[derive(Clone)]
pub(super) struct ConnLimits {
    pub(super) head: Duration,
    pub(super) idle: Duration,
    per_address: u32,
    trusted: Arc<Vec<crate::net::Cidr>>,
    open: OpenPerAddress,
    pub(super) slots: Arc<Semaphore>,
    pub(super) total: u32,
}

impl ConnLimits {
    pub(super) fn from_app(app: &App) -> Self {
        let total = MAX_CONNECTIONS.min(fd_budget()) as u32;
        Self {
            head: app.config.header_timeout,
            idle: app.config.idle_timeout,
            per_address: app.config.max_connections_per_address,
            trusted: Arc::new(app.config.trusted_proxies.clone()),
            open: Arc::new(Mutex::new(HashMap::new())),
            slots: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Count a connection from `ip`; `None` when that address already holds its share.
    pub(super) fn admit(&self, ip: IpAddr) -> Option<AddressSlot> {
        if self.trusted.iter().any(|c| c.contains(ip)) {
            return Some(AddressSlot(None));
        }
        let key = crate::net::limit_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key.clone()).or_insert(0);
        if *n >= self.per_address {
            return None;
        }
        *n += 1;
        Some(AddressSlot(Some((key, self.open.clone()))))
    }
}

/// One connection's share of its address's allowance, returned on drop.
pub(super) struct AddressSlot(Option<(String, OpenPerAddress)>);

/// Open connections by address key.
type OpenPerAddress = Arc<Mutex<HashMap<String, u32>>>;

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Some((key, open)) = self.0.take() {
            let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = open.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&key);
                }
            }
        }
    }
}

/// Raise the soft descriptor limit to the hard one and return how many connections fit.
fn fd_budget() -> usize {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit read and write a plain struct we own.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                if lim.rlim_cur < lim.rlim_max {
                    let raised = libc::rlimit {
                        rlim_cur: lim.rlim_max,
                        rlim_max: lim.rlim_max,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                        lim.rlim_cur = lim.rlim_max;
                    }
                }
                let cur = lim.rlim_cur;
                return cur
                    .saturating_sub(FD_RESERVE)
                    .clamp(16, MAX_CONNECTIONS as u64) as usize;
            }
        }
    }
    MAX_CONNECTIONS
}
