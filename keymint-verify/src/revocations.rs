//! Following keymint's revocation feed (`GET /oauth/revocations`): revoked jtis, sessions
//! (`sid`) and clients, each kept until the tokens it covers have expired.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::claims::Claims;
use crate::error::VerifyError;
use crate::stats::Counters;

/// Entries per page asked of the feed.
const PAGE: usize = 5_000;

#[derive(Clone)]
pub(crate) struct Settings {
    pub url: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub poll: Duration,
    pub max_stale: Duration,
    pub fail_open: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<hidden>")
            .field("poll", &self.poll)
            .field("max_stale", &self.max_stale)
            .field("fail_open", &self.fail_open)
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            url: None,
            client_id: String::new(),
            client_secret: String::new(),
            poll: Duration::from_secs(1),
            max_stale: Duration::from_secs(60),
            fail_open: false,
        }
    }
}

#[derive(Default)]
struct Revoked {
    jti: HashMap<String, i64>,
    sid: HashMap<String, i64>,
    client: HashMap<String, i64>,
}

impl Revoked {
    fn len(&self) -> usize {
        self.jti.len() + self.sid.len() + self.client.len()
    }
}

pub(crate) struct Follower {
    http: reqwest::Client,
    url: String,
    settings: Settings,
    /// Entries are kept this long past their `expires_at`, matching the token leeway.
    leeway: i64,
    /// The feed position; the lock also keeps polls from overlapping.
    cursor: tokio::sync::Mutex<Option<String>>,
    revoked: RwLock<Revoked>,
    /// When the feed was last read to its end, in ms since `epoch` (0: never).
    caught_up_ms: AtomicU64,
    epoch: Instant,
    stats: Arc<Counters>,
}

#[derive(serde::Deserialize)]
struct Page {
    revocations: Vec<Entry>,
    cursor: String,
}

#[derive(serde::Deserialize)]
struct Entry {
    kind: String,
    value: String,
    expires_at: i64,
}

impl Follower {
    pub fn new(
        http: reqwest::Client,
        url: String,
        settings: Settings,
        leeway: Duration,
        stats: Arc<Counters>,
    ) -> Follower {
        Follower {
            http,
            url,
            settings,
            leeway: leeway.as_secs() as i64,
            cursor: tokio::sync::Mutex::new(None),
            revoked: RwLock::new(Revoked::default()),
            caught_up_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            stats,
        }
    }

    pub fn every(&self) -> Duration {
        self.settings.poll
    }

    /// Refuse a revoked token, and any token while the feed is staler than its bound (unless
    /// failing open).
    pub fn check(&self, claims: &Claims) -> Result<(), VerifyError> {
        if self.age() > self.settings.max_stale && !self.settings.fail_open {
            return Err(VerifyError::RevocationsUnavailable);
        }
        let r = self.revoked.read().unwrap_or_else(|p| p.into_inner());
        let hit = r.jti.contains_key(&claims.jti)
            || claims.sid.as_ref().is_some_and(|s| r.sid.contains_key(s))
            || claims
                .client_id
                .as_ref()
                .is_some_and(|c| r.client.contains_key(c));
        if hit {
            return Err(VerifyError::Revoked);
        }
        Ok(())
    }

    /// Time since the feed was last read to its end.
    pub fn age(&self) -> Duration {
        let at = Duration::from_millis(self.caught_up_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(at)
    }

    pub fn entry_count(&self) -> usize {
        self.revoked.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Read the feed from the cursor to its end, then forget expired entries.
    pub async fn poll(&self) -> Result<(), String> {
        let mut cursor = self.cursor.lock().await;
        self.stats.revocation_polls.fetch_add(1, Ordering::Relaxed);
        let result = self.read_to_end(&mut cursor).await;
        match &result {
            Ok(()) => {
                let now = self.epoch.elapsed().as_millis() as u64;
                // Never 0, which means "never read".
                self.caught_up_ms.store(now.max(1), Ordering::Relaxed);
                self.prune();
            }
            Err(e) => {
                self.stats
                    .revocation_poll_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "revocation feed poll failed");
            }
        }
        result
    }

    async fn read_to_end(&self, cursor: &mut Option<String>) -> Result<(), String> {
        loop {
            let mut req = self
                .http
                .get(&self.url)
                .basic_auth(&self.settings.client_id, Some(&self.settings.client_secret))
                .query(&[("limit", PAGE.to_string())]);
            if let Some(c) = cursor.as_deref() {
                req = req.query(&[("after", c)]);
            }
            let resp = req.send().await.map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("status {}", resp.status()));
            }
            let page: Page = resp.json().await.map_err(|e| e.to_string())?;
            let n = page.revocations.len();
            {
                let mut r = self.revoked.write().unwrap_or_else(|p| p.into_inner());
                for e in page.revocations {
                    let map = match e.kind.as_str() {
                        "jti" => &mut r.jti,
                        "sid" => &mut r.sid,
                        "client" => &mut r.client,
                        other => {
                            tracing::warn!(kind = other, "unknown revocation kind; skipped");
                            continue;
                        }
                    };
                    map.insert(e.value, e.expires_at);
                }
            }
            *cursor = Some(page.cursor);
            if n < PAGE {
                return Ok(());
            }
        }
    }

    fn prune(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let keep = |exp: &mut i64| exp.saturating_add(self.leeway) >= now;
        let mut r = self.revoked.write().unwrap_or_else(|p| p.into_inner());
        r.jti.retain(|_, e| keep(e));
        r.sid.retain(|_, e| keep(e));
        r.client.retain(|_, e| keep(e));
    }
}
