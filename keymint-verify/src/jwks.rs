//! The JWKS cache: max-age (clamped), ETag revalidation, a background refresh before expiry,
//! one single-flight refetch per cooldown on an unknown kid, a bounded cache of missing kids,
//! and the last good key set kept through failed fetches for at most `max_stale`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;

use crate::error::VerifyError;
use crate::stats::Counters;

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub min_age: Duration,
    pub max_age: Duration,
    pub cooldown: Duration,
    pub missing_capacity: usize,
    pub max_stale: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_age: Duration::from_secs(30),
            max_age: Duration::from_secs(3600),
            cooldown: Duration::from_secs(30),
            missing_capacity: 1024,
            max_stale: Duration::from_secs(3600),
        }
    }
}

type Keys = HashMap<String, Arc<DecodingKey>>;

/// The longest a verification waits for an unknown-kid refetch.
const REFETCH_WAIT: Duration = Duration::from_secs(5);

pub(crate) struct Jwks {
    http: reqwest::Client,
    url: String,
    settings: Settings,
    keys: RwLock<Arc<Keys>>,
    /// Set whenever the issuer confirmed the key set (200 or 304), in ms since `epoch`.
    confirmed_ms: AtomicU64,
    /// Until when the key set may be used: its max-age plus `max_stale`, in ms since `epoch`.
    usable_until_ms: AtomicU64,
    epoch: Instant,
    fetch: Mutex<FetchState>,
    /// Single flight for unknown-kid refetches, holding when the last one started.
    refetch: tokio::sync::Mutex<Option<Instant>>,
    /// One fetch at a time, so an older answer never replaces a newer one.
    fetching: tokio::sync::Mutex<()>,
    missing: Mutex<HashMap<String, Instant>>,
    stats: Arc<Counters>,
}

#[derive(Default)]
struct FetchState {
    etag: Option<String>,
    /// How long the last answer may be cached.
    fresh_for: Option<Duration>,
    failures: u32,
}

/// Why a fetch failed; the last good key set stays.
#[derive(Debug)]
pub(crate) struct FetchError(String);

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Jwks {
    pub fn new(
        http: reqwest::Client,
        url: String,
        settings: Settings,
        stats: Arc<Counters>,
    ) -> Jwks {
        Jwks {
            http,
            url,
            settings,
            keys: RwLock::new(Arc::new(Keys::new())),
            confirmed_ms: AtomicU64::new(0),
            usable_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            fetch: Mutex::new(FetchState::default()),
            refetch: tokio::sync::Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            missing: Mutex::new(HashMap::new()),
            stats,
        }
    }

    /// The key for `kid`, refetching once per cooldown when it is unknown.
    pub async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, VerifyError> {
        if self.now_ms() > self.usable_until_ms.load(Ordering::Relaxed) {
            return Err(VerifyError::KeysUnavailable);
        }
        if let Some(k) = self.lookup(kid) {
            return Ok(k);
        }
        if self.known_missing(kid) {
            return Err(VerifyError::UnknownKey);
        }
        // However slow the issuer (or a caller's HTTP client without timeouts), a request
        // waits for a refetch at most this long.
        let _ = tokio::time::timeout(REFETCH_WAIT, self.refetch_for(kid)).await;
        self.lookup(kid).ok_or_else(|| {
            self.remember_missing(kid);
            VerifyError::UnknownKey
        })
    }

    fn lookup(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        read(&self.keys).get(kid).cloned()
    }

    /// Time since the issuer last confirmed the key set.
    pub fn age(&self) -> Duration {
        let confirmed = self.confirmed_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(confirmed))
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn key_count(&self) -> usize {
        read(&self.keys).len()
    }

    pub fn missing_count(&self) -> usize {
        lock(&self.missing).len()
    }

    async fn refetch_for(&self, kid: &str) {
        let mut last = self.refetch.lock().await;
        // Whoever held the lock before may have fetched this kid already.
        if self.lookup(kid).is_some() {
            return;
        }
        if last.is_some_and(|t| t.elapsed() < self.settings.cooldown) {
            return;
        }
        *last = Some(Instant::now());
        self.stats
            .unknown_kid_refetches
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(kid, "unknown kid: refetching the JWKS");
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "JWKS refetch failed; keeping the last good key set");
        }
    }

    fn known_missing(&self, kid: &str) -> bool {
        lock(&self.missing)
            .get(kid)
            .is_some_and(|t| t.elapsed() < self.settings.cooldown)
    }

    fn remember_missing(&self, kid: &str) {
        let mut m = lock(&self.missing);
        if m.len() >= self.settings.missing_capacity {
            let cooldown = self.settings.cooldown;
            m.retain(|_, t| t.elapsed() < cooldown);
        }
        // Full of live entries: the cooldown alone still bounds the fetches.
        if m.len() < self.settings.missing_capacity {
            m.insert(kid.to_owned(), Instant::now());
        }
    }

    /// When the background refresher should fetch next: before the cached answer expires,
    /// or after a back-off when the last fetch failed.
    pub fn next_refresh_in(&self) -> Duration {
        let f = lock(&self.fetch);
        if f.failures > 0 {
            let backoff = Duration::from_secs(1u64 << f.failures.min(5));
            return backoff.min(self.settings.min_age.max(Duration::from_secs(1)));
        }
        let fresh = f.fresh_for.unwrap_or(self.settings.min_age);
        (fresh.mul_f64(0.8)).max(Duration::from_millis(500))
    }

    /// Fetch (conditionally, with the last ETag) and install a new key set. On any failure
    /// the last good set stays.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let _one_at_a_time = self.fetching.lock().await;
        let result = self.fetch_once().await;
        let mut f = lock(&self.fetch);
        match &result {
            Ok(()) => f.failures = 0,
            Err(e) => {
                f.failures = f.failures.saturating_add(1);
                self.stats
                    .jwks_fetch_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, url = %self.url, "JWKS fetch failed");
            }
        }
        result
    }

    async fn fetch_once(&self) -> Result<(), FetchError> {
        let etag = lock(&self.fetch).etag.clone();
        let mut req = self.http.get(&self.url);
        if let Some(e) = &etag {
            req = req.header(http::header::IF_NONE_MATCH, e);
        }
        self.stats.jwks_fetches.fetch_add(1, Ordering::Relaxed);
        let resp = req.send().await.map_err(|e| FetchError(e.to_string()))?;
        let fresh_for = self.clamp(max_age(resp.headers()));
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_MODIFIED && etag.is_some() {
            self.stats.jwks_not_modified.fetch_add(1, Ordering::Relaxed);
            self.confirm(fresh_for, etag);
            return Ok(());
        }
        if status != reqwest::StatusCode::OK {
            return Err(FetchError(format!("status {status}")));
        }
        let new_etag = resp
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.bytes().await.map_err(|e| FetchError(e.to_string()))?;
        let keys = parse(&body)?;
        tracing::debug!(keys = keys.len(), "JWKS fetched");
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        // A kid missing before may be published now.
        lock(&self.missing).clear();
        self.confirm(fresh_for, new_etag);
        Ok(())
    }

    fn confirm(&self, fresh_for: Duration, etag: Option<String>) {
        let mut f = lock(&self.fetch);
        f.fresh_for = Some(fresh_for);
        f.etag = etag;
        let now = self.now_ms();
        let usable = fresh_for.saturating_add(self.settings.max_stale);
        self.confirmed_ms.store(now, Ordering::Relaxed);
        self.usable_until_ms.store(
            now.saturating_add(u64::try_from(usable.as_millis()).unwrap_or(u64::MAX)),
            Ordering::Relaxed,
        );
    }

    fn clamp(&self, max_age: Option<Duration>) -> Duration {
        max_age
            .unwrap_or(self.settings.min_age)
            .clamp(self.settings.min_age, self.settings.max_age)
    }
}

/// `Cache-Control: max-age=N`; `no-cache`/`no-store` count as 0.
fn max_age(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::CACHE_CONTROL)?.to_str().ok()?;
    let mut age = None;
    for d in v.split(',').map(str::trim) {
        if d.eq_ignore_ascii_case("no-cache") || d.eq_ignore_ascii_case("no-store") {
            return Some(Duration::ZERO);
        }
        if let Some(n) = d.strip_prefix("max-age=") {
            age = n.trim_matches('"').parse().ok().map(Duration::from_secs);
        }
    }
    age
}

/// The RS256 signing keys of a JWKS document. Keys of other types or uses are skipped; a
/// document with none is a failure, so an empty or foreign answer never replaces good keys.
fn parse(body: &[u8]) -> Result<Keys, FetchError> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set =
        serde_json::from_slice(body).map_err(|e| FetchError(format!("not a JWKS: {e}")))?;
    let mut keys = Keys::new();
    for k in set.keys {
        let field = |name: &str| k.get(name).and_then(|v| v.as_str());
        let usable = field("kty") == Some("RSA")
            && field("use").is_none_or(|u| u == "sig")
            && field("alg").is_none_or(|a| a == "RS256");
        if let (true, Some(kid), Some(n), Some(e)) = (usable, field("kid"), field("n"), field("e"))
            && let Ok(key) = DecodingKey::from_rsa_components(n, e)
        {
            keys.insert(kid.to_owned(), Arc::new(key));
        }
    }
    if keys.is_empty() {
        return Err(FetchError("the JWKS holds no RS256 signing key".into()));
    }
    Ok(keys)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        let h = |v: &'static str| {
            let mut m = http::HeaderMap::new();
            m.insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static(v),
            );
            max_age(&m)
        };
        assert_eq!(h("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(h("no-store"), Some(Duration::ZERO));
        assert_eq!(h("public"), None);
        assert_eq!(max_age(&http::HeaderMap::new()), None);
    }

    #[test]
    fn only_rs256_signing_keys_are_taken_and_none_is_a_failure() {
        let n = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
        assert_eq!(
            parse(format!(r#"{{"keys":[{{"kty":"RSA","kid":"a","n":"{n}","e":"AQAB","use":"sig","alg":"RS256"}},{{"kty":"RSA","kid":"b","n":"{n}","e":"AQAB","use":"enc"}},{{"kty":"EC","kid":"c"}}]}}"#).as_bytes())
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["a"]
        );
        assert!(parse(br#"{"keys":[]}"#).is_err());
        assert!(parse(b"<html>").is_err());
    }
}
