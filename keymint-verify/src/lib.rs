//! Verify [keymint](https://github.com/keymint) access tokens in a relying party.
//!
//! A [`Verifier`] checks RS256 access tokens (RFC 9068, `typ: at+jwt`) against the issuer's
//! JWKS and, when given client credentials, against the issuer's revocation feed, so a logout
//! is refused here within about a second instead of when the token expires.
//!
//! It avoids the traps of the usual verifier libraries:
//! - the JWKS is cached for its `Cache-Control: max-age` (clamped), revalidated with
//!   `If-None-Match` and refreshed in the background *before* it expires, so a key rotation
//!   (keymint publishes the next key one period ahead) never needs a fetch on the request path;
//! - an unknown `kid` triggers at most one refetch per cooldown for the whole process (single
//!   flight), and kids known to be missing are remembered in a bounded cache, so a storm of
//!   tokens with random kids costs one request to the issuer, not one each;
//! - a failed fetch (network, 5xx, garbage) never drops the last good key set; it is used for
//!   at most [`Builder::max_stale`], then verification fails closed;
//! - the algorithm comes from the JWK and is always RS256, never from the token's header.
//!
//! ```no_run
//! # async fn run() -> Result<(), keymint_verify::BuildError> {
//! use std::time::Duration;
//! use keymint_verify::Verifier;
//!
//! let verifier = Verifier::builder("https://id.example.com")
//!     .audience("https://api.example.com")
//!     .required_scopes(["billing:read"])
//!     .follow_revocations("c_5f2b8e0c", "client-secret")
//!     .revocation_max_stale(Duration::from_secs(60))
//!     .build()
//!     .await?;
//! match verifier.verify("eyJhbGciOi...").await {
//!     Ok(claims) => println!("hello {}", claims.sub),
//!     Err(e) => println!("refused: {e}"),
//! }
//! # Ok(()) }
//! ```
//!
//! In an axum service, [`VerifyLayer`] or the [`Verified`] extractor do the same per request.
#![deny(missing_docs)]

mod claims;
mod error;
mod jwks;
mod layer;
mod revocations;
mod stats;

use std::sync::Arc;
use std::time::Duration;

pub use claims::Claims;
pub use error::{BuildError, VerifyError};
pub use layer::{Rejection, Verified, VerifyLayer, VerifyService};
pub use stats::Stats;

use base64::Engine;
use jsonwebtoken::Algorithm;

/// Tokens longer than this are refused unread, as keymint itself does.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Verifies keymint access tokens. Cheap to clone; clones share caches and background tasks,
/// which stop when the last clone is dropped.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    rules: claims::Rules,
    required_scopes: Vec<String>,
    jwks: jwks::Jwks,
    revocations: Option<revocations::Follower>,
    stats: Arc<stats::Counters>,
}

/// Configures a [`Verifier`]; from [`Verifier::builder`].
#[derive(Clone, Debug)]
pub struct Builder {
    issuer: String,
    discovery_url: Option<String>,
    jwks_url: Option<String>,
    audience: Option<String>,
    leeway: Duration,
    required_scopes: Vec<String>,
    jwks: jwks::Settings,
    revocations: Option<revocations::Settings>,
    http: Option<reqwest::Client>,
}

impl Verifier {
    /// Start configuring a verifier of tokens whose `iss` is `issuer` (e.g.
    /// `https://id.example.com`). By default the JWKS URL is discovered from
    /// `{issuer}/.well-known/openid-configuration` and the audience is the issuer.
    pub fn builder(issuer: impl Into<String>) -> Builder {
        Builder {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            discovery_url: None,
            jwks_url: None,
            audience: None,
            leeway: Duration::from_secs(30),
            required_scopes: Vec::new(),
            jwks: jwks::Settings::default(),
            revocations: None,
            http: None,
        }
    }

    /// Verify `token` (without the `Bearer ` prefix) and return its claims.
    ///
    /// Awaits only when the token names a kid this verifier has not seen, to refetch the JWKS
    /// (at most once per cooldown for the whole process).
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let result = self.check(token).await;
        self.inner.stats.record(&result);
        result
    }

    async fn check(&self, token: &str) -> Result<Claims, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::Malformed);
        }
        // Parsed here once, not by `decode_header` and again by `jsonwebtoken::decode`
        // (which also reads the claims twice): verification costs the signature check plus
        // about a microsecond.
        let (signed, signature) = token.rsplit_once('.').ok_or(VerifyError::Malformed)?;
        let (header, body) = signed.split_once('.').ok_or(VerifyError::Malformed)?;
        let header: Header = json_segment(header)?;
        // The key is an RS256 JWK; a token asking for anything else does not verify with it.
        if header.alg != "RS256" {
            return Err(VerifyError::BadSignature);
        }
        if !is_access_token_type(header.typ.as_deref()) {
            return Err(VerifyError::WrongType);
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let key = self.inner.jwks.key(&kid).await?;
        let valid =
            jsonwebtoken::crypto::verify(signature, signed.as_bytes(), &key, Algorithm::RS256)
                .map_err(|_| VerifyError::Malformed)?;
        if !valid {
            return Err(VerifyError::BadSignature);
        }
        let claims: Claims = json_segment(body)?;
        self.inner.rules.check(&claims, unix_now())?;
        if let Some(missing) = self
            .inner
            .required_scopes
            .iter()
            .find(|s| !claims.has_scope(s))
        {
            return Err(VerifyError::InsufficientScope(missing.clone()));
        }
        if let Some(follower) = &self.inner.revocations {
            follower.check(&claims)?;
        }
        Ok(claims)
    }

    /// A snapshot of this verifier's counters, for an application's metrics.
    pub fn stats(&self) -> Stats {
        self.inner
            .stats
            .snapshot(&self.inner.jwks, self.inner.revocations.as_ref())
    }
}

/// The JOSE header fields a verification reads.
#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
}

/// A base64url JSON segment of a JWS.
fn json_segment<T: serde::de::DeserializeOwned>(b64: &str) -> Result<T, VerifyError> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| VerifyError::Malformed)?;
    serde_json::from_slice(&raw).map_err(|_| VerifyError::Malformed)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// RFC 9068: `at+jwt`, or its full media type, case-insensitively.
fn is_access_token_type(typ: Option<&str>) -> bool {
    typ.is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    })
}

impl Builder {
    /// Fetch the JWKS from this URL instead of discovering it.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// Read the discovery document from this URL instead of
    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(mut self, url: impl Into<String>) -> Self {
        self.discovery_url = Some(url.into());
        self
    }

    /// The `aud` a token must carry (default: the issuer, keymint's default audience).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Clock skew allowed on `exp` and `nbf` (default 30 s). Keep it at most keymint's own
    /// `KEYMINT_LEEWAY`: the feed lists a revocation only until keymint stops accepting the
    /// tokens it covers.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Scopes every token must carry (space-separated `scope` claim).
    pub fn required_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Bounds on the JWKS cache lifetime taken from `Cache-Control: max-age` (default 30 s to
    /// 1 h). A missing max-age counts as the lower bound.
    pub fn jwks_max_age_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.jwks.min_age = min;
        self.jwks.max_age = max.max(min);
        self
    }

    /// The one cooldown between refetches caused by unknown kids (default 30 s).
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.jwks.cooldown = cooldown;
        self
    }

    /// How many kids known to be missing are remembered (default 1,024).
    pub fn missing_kids_capacity(mut self, n: usize) -> Self {
        self.jwks.missing_capacity = n;
        self
    }

    /// How long past its max-age the last good key set is still used while fetches fail
    /// (default 1 h); after that, every token is refused with [`VerifyError::KeysUnavailable`].
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.jwks.max_stale = max_stale;
        self
    }

    /// Follow the issuer's revocation feed (`{issuer}/oauth/revocations`) with these client
    /// credentials, and refuse revoked tokens.
    pub fn follow_revocations(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        let mut s = self.revocations.take().unwrap_or_default();
        s.client_id = client_id.into();
        s.client_secret = client_secret.into();
        self.revocations = Some(s);
        self
    }

    /// Read the feed from this URL instead of `{issuer}/oauth/revocations`.
    pub fn revocation_feed_url(mut self, url: impl Into<String>) -> Self {
        let mut s = self.revocations.take().unwrap_or_default();
        s.url = Some(url.into());
        self.revocations = Some(s);
        self
    }

    /// How often the feed is polled (default 1 s).
    pub fn revocation_poll(mut self, every: Duration) -> Self {
        let mut s = self.revocations.take().unwrap_or_default();
        s.poll = every;
        self.revocations = Some(s);
        self
    }

    /// When the feed was last read successfully longer ago than this (default 60 s), tokens
    /// are refused with [`VerifyError::RevocationsUnavailable`], unless
    /// [`Builder::fail_open`] is set.
    pub fn revocation_max_stale(mut self, bound: Duration) -> Self {
        let mut s = self.revocations.take().unwrap_or_default();
        s.max_stale = bound;
        self.revocations = Some(s);
        self
    }

    /// Accept tokens (checking the revocations already known) while the feed is staler than
    /// its bound. Off by default: a revoked token must not pass because the feed is down.
    pub fn fail_open(mut self, fail_open: bool) -> Self {
        let mut s = self.revocations.take().unwrap_or_default();
        s.fail_open = fail_open;
        self.revocations = Some(s);
        self
    }

    /// The HTTP client for the issuer (default: one with 5 s timeouts).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Discover, fetch the JWKS and read the revocation feed to its end, then start the
    /// background refreshes. Must run inside a Tokio runtime.
    pub async fn build(self) -> Result<Verifier, BuildError> {
        let http = match self.http {
            Some(c) => c,
            None => default_client()?,
        };
        let jwks_url = match self.jwks_url {
            Some(u) => u,
            None => {
                let url = self
                    .discovery_url
                    .unwrap_or_else(|| format!("{}/.well-known/openid-configuration", self.issuer));
                discover_jwks_uri(&http, &url, &self.issuer).await?
            }
        };
        let rules = claims::Rules {
            audience: self.audience.clone().unwrap_or_else(|| self.issuer.clone()),
            issuer: self.issuer.clone(),
            leeway: i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX),
        };
        let stats = Arc::new(stats::Counters::default());
        let jwks = jwks::Jwks::new(http.clone(), jwks_url, self.jwks, stats.clone());
        jwks.refresh()
            .await
            .map_err(|e| BuildError::Jwks(e.to_string()))?;
        let revocations = match self.revocations {
            Some(mut s) => {
                let url = s
                    .url
                    .take()
                    .unwrap_or_else(|| format!("{}/oauth/revocations", self.issuer));
                let f = revocations::Follower::new(http, url, s, self.leeway, stats.clone());
                f.poll()
                    .await
                    .map_err(|e| BuildError::Revocations(e.to_string()))?;
                Some(f)
            }
            None => None,
        };
        let inner = Arc::new(Inner {
            rules,
            required_scopes: self.required_scopes,
            jwks,
            revocations,
            stats,
        });
        spawn_background(&inner);
        Ok(Verifier { inner })
    }
}

/// The JWKS refresher and the feed poller. They hold the verifier weakly and end with it.
fn spawn_background(inner: &Arc<Inner>) {
    let weak = Arc::downgrade(inner);
    tokio::spawn(async move {
        loop {
            let wait = match weak.upgrade() {
                Some(i) => i.jwks.next_refresh_in(),
                None => return,
            };
            tokio::time::sleep(wait).await;
            let Some(i) = weak.upgrade() else { return };
            if let Err(e) = i.jwks.refresh().await {
                tracing::warn!(error = %e, "JWKS refresh failed; keeping the last good key set");
            }
        }
    });
    if inner.revocations.is_none() {
        return;
    }
    let weak = Arc::downgrade(inner);
    tokio::spawn(async move {
        loop {
            let wait = match weak.upgrade() {
                Some(i) => i.revocations.as_ref().map(|f| f.every()),
                None => None,
            };
            let Some(wait) = wait else { return };
            tokio::time::sleep(wait).await;
            let Some(i) = weak.upgrade() else { return };
            if let Some(f) = &i.revocations
                && let Err(e) = f.poll().await
            {
                tracing::warn!(error = %e, "revocation feed poll failed");
            }
        }
    });
}

fn default_client() -> Result<reqwest::Client, BuildError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| BuildError::Http(e.to_string()))
}

/// The `jwks_uri` of the discovery document at `url`, which must name `issuer` as its
/// issuer (RFC 8414 section 3.3), so a misdirected URL cannot supply another issuer's keys.
async fn discover_jwks_uri(
    http: &reqwest::Client,
    url: &str,
    issuer: &str,
) -> Result<String, BuildError> {
    #[derive(serde::Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let doc: Discovery = http
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| BuildError::Discovery(e.to_string()))?
        .json()
        .await
        .map_err(|e| BuildError::Discovery(e.to_string()))?;
    if doc.issuer.trim_end_matches('/') != issuer {
        return Err(BuildError::Discovery(format!(
            "the document names issuer {:?}, not {issuer:?}",
            doc.issuer
        )));
    }
    Ok(doc.jwks_uri)
}
