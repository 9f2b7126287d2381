//! Application state: everything a request needs, built once at start-up and shared.
//! Nothing global: tests build as many independent apps as they like.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::clients::ClientStore;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, ErrorCode, Result};
use crate::keys::kek::{Kek, KekSource};
use crate::keys::{KeyManager, KeyPolicy};
use crate::metrics::Metrics;
use crate::ratelimit::LoginLimiter;
use crate::revocation::Denylist;
use crate::sessions::Sessions;
use crate::tokens::{AccessClaims, Rejection, Tokens};
use crate::users::{PasswordHasher, UserStore};

/// The application.
pub struct App {
    pub config: Config,
    /// The one source of "now" for requests, jobs and sync (tests advance it).
    pub clock: Clock,
    pub db: DatabaseConnection,
    pub keys: Arc<KeyManager>,
    pub tokens: Arc<Tokens>,
    pub denylist: Arc<Denylist>,
    pub users: UserStore,
    pub clients: ClientStore,
    pub sessions: Sessions,
    pub limiter: LoginLimiter,
    pub metrics: Arc<Metrics>,
    /// Repeated audit events (refused logins) waiting for the next flush.
    pub repeats: crate::audit::Repeats,
    /// The key of browser CSRF tokens (derived from the KEK).
    pub browser: crate::oidc::BrowserKey,
    /// The threads that make RSA signatures.
    pub signing: Arc<crate::pool::WorkPool>,
}

/// What an `App` is built with besides its configuration. Production uses the defaults.
#[derive(Clone, Default)]
pub struct Deps {
    /// The source of "now".
    pub clock: Clock,
    /// Where new signing keys come from.
    pub key_source: crate::keys::material::KeySource,
}

/// The axum state: a cheap handle on the one `App`.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// Why start-up failed; configuration problems exit with code 2.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Other(String),
}

impl App {
    /// Connect, migrate, load the KEK and keys, load the denylist, on the system clock.
    pub async fn open(config: Config) -> Result<App, StartError> {
        Self::open_with(config, Deps::default()).await
    }

    /// `open`, with the clock and key source given (tests move time and use fixture keys).
    pub async fn open_with(config: Config, deps: Deps) -> Result<App, StartError> {
        let Deps { clock, key_source } = deps;
        let now = clock.now();
        // The token first: a wrong module, token or PIN stops start-up before anything else.
        let hsm = match config
            .pkcs11()
            .map_err(|e| StartError::Config(e.to_string()))?
        {
            Some(p11) => Some(Arc::new(
                tokio::task::spawn_blocking(move || crate::keys::hsm::Hsm::open(&p11))
                    .await
                    .map_err(|e| StartError::Other(e.to_string()))?
                    .map_err(StartError::Config)?,
            )),
            None => None,
        };
        let db = crate::db::connect(&config.database_url)
            .await
            .map_err(|e| StartError::Other(format!("cannot open database: {e}")))?;
        crate::db::migrate(&db)
            .await
            .map_err(|e| StartError::Other(format!("migration failed: {e}")))?;
        let kek = Kek::load(config.kek, &config.keys_dir).map_err(StartError::Config)?;
        if kek.source == KekSource::File && config.is_https() {
            tracing::warn!(
                "the key-encryption key comes from a file in {}; set KEYMINT_KEK from a secret store in production",
                config.keys_dir.display()
            );
        }
        let browser = crate::oidc::BrowserKey::new(kek.derive("keymint browser csrf v1"));
        let secs = |d: std::time::Duration| d.as_secs() as i64;
        // Access keys sign ID tokens too: a retired one stays published for the longer of
        // the two lifetimes.
        let policy = KeyPolicy {
            bits: config.key_bits,
            access_ttl: secs(config.access_ttl.max(config.id_token_ttl)),
            refresh_ttl: secs(config.refresh_ttl),
            leeway: secs(config.leeway),
        };
        let signing = crate::keys::Signing {
            backend: config.signer,
            hsm,
        };
        let keys = KeyManager::start(db.clone(), kek, policy, key_source, signing, now)
            .await
            .map_err(|e| match e.detail() {
                Some(d) if d.contains("KEK") => StartError::Config(format!("KEYMINT_KEK: {d}")),
                Some(d) if d.contains("KEYMINT_PKCS11") => StartError::Config(d.to_string()),
                _ => StartError::Other(format!("key manager: {e}")),
            })?;
        let tokens = Arc::new(Tokens::new(
            config.issuer.clone(),
            config.audience.clone(),
            secs(config.access_ttl),
            policy.refresh_ttl,
            policy.leeway,
        ));
        let denylist = Arc::new(
            Denylist::load(db.clone(), clock.clone(), now)
                .await
                .map_err(|e| StartError::Other(format!("denylist: {e}")))?,
        );
        let hasher = Arc::new(PasswordHasher::new().map_err(|e| StartError::Other(e.to_string()))?);
        let users = UserStore::new(db.clone(), hasher);
        let keys = Arc::new(keys);
        let metrics = Arc::new(Metrics::default());
        let signing = Arc::new(
            crate::pool::WorkPool::per_core("sign", false)
                .map_err(|e| StartError::Other(e.to_string()))?,
        );
        let sessions = Sessions {
            signing: signing.clone(),
            db: db.clone(),
            keys: keys.clone(),
            tokens: tokens.clone(),
            denylist: denylist.clone(),
            users: users.clone(),
            reuse_grace: secs(config.refresh_reuse_grace),
            metrics: metrics.clone(),
        };
        let clients = ClientStore::new(db.clone());
        let limiter = LoginLimiter::new(config.login_limits, db.clone());
        Ok(App {
            config,
            clock,
            db,
            keys,
            tokens,
            denylist,
            users,
            clients,
            sessions,
            limiter,
            metrics,
            repeats: Default::default(),
            browser,
            signing,
        })
    }

    /// Unix seconds now, by the app's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Ready to serve: the database answers and each purpose has an active key.
    pub async fn ready(&self) -> Result<()> {
        if self.db.ping().await.is_err() {
            return Err(Error::new(
                ErrorCode::ServiceUnavailable,
                "database unreachable",
            ));
        }
        let ring = self.keys.ring();
        if crate::keys::Purpose::ALL
            .iter()
            .any(|p| ring.signer(*p).is_none())
        {
            return Err(Error::new(
                ErrorCode::ServiceUnavailable,
                "no active signing key",
            ));
        }
        Ok(())
    }

    /// Pick up other instances' key changes and revocations now, instead of at the next
    /// `KEYMINT_SYNC_INTERVAL` tick.
    pub async fn sync_now(&self) -> Result<()> {
        self.repeats.flush(&self.db).await;
        self.sync(self.now()).await
    }

    /// Create the bootstrap admin once, when configured and no admin exists yet.
    pub async fn bootstrap(&self, now: i64) -> Result<()> {
        let Some((name, password)) = &self.config.bootstrap_admin else {
            return Ok(());
        };
        if self.users.admin_exists().await? {
            return Ok(());
        }
        match self
            .users
            .create(name, password, &[crate::users::ADMIN_ROLE.to_string()], now)
            .await
        {
            Ok(u) => {
                tracing::info!(user = %u.username, "bootstrap admin created");
                crate::audit::record(
                    &self.db,
                    crate::audit::Event::new("user.create", "ok")
                        .subject(Some(&u.id))
                        .actor(Some("bootstrap")),
                    now,
                )
                .await;
                Ok(())
            }
            Err(e) if e.code == ErrorCode::Conflict => {
                tracing::warn!(user = %name, "KEYMINT_BOOTSTRAP_ADMIN names an existing non-admin user; not changed");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Verify a bearer access token for keymint's own API: signature, claims, audience,
    /// and the denylist.
    pub fn authenticate(&self, token: &str, now: i64) -> Result<AccessClaims> {
        self.verify_bearer(token, Some(&self.config.audience), now)
    }

    /// `authenticate`, for any audience keymint issued to (userinfo serves every client).
    pub fn authenticate_any_audience(&self, token: &str, now: i64) -> Result<AccessClaims> {
        self.verify_bearer(token, None, now)
    }

    fn verify_bearer(&self, token: &str, audience: Option<&str>, now: i64) -> Result<AccessClaims> {
        let claims = self
            .tokens
            .verify_access(&self.keys.ring(), token, audience, now)
            .map_err(|r| {
                self.metrics.verify_failed(r);
                match r {
                    Rejection::Expired => {
                        Error::new(ErrorCode::TokenExpired, "the access token has expired")
                    }
                    _ => Error::invalid_token(),
                }
            })?;
        if self.denylist.is_revoked(
            &claims.jti,
            claims.sid.as_deref(),
            claims.client_id.as_deref(),
        ) {
            self.metrics.revoked_refused();
            return Err(Error::new(
                ErrorCode::TokenRevoked,
                "the token has been revoked",
            ));
        }
        Ok(claims)
    }

    /// The admin rules over claims already verified (`authenticate`): the token is first-party
    /// (no `client_id`), its user exists, is enabled and holds the admin role now. Roles are
    /// read from the user store, not the token, so a demoted admin loses access at once
    /// (within the 1 s user cache on other instances).
    pub async fn require_admin(&self, claims: AccessClaims) -> Result<AccessClaims> {
        if claims.client_id.is_some() {
            // A token minted for an OAuth client never carries admin power (SPEC section 4):
            // the admin who signed in to a third-party app did not hand it /admin.
            return Err(Error::new(
                ErrorCode::Forbidden,
                "admin requests need a first-party token (from /auth/login), not a client's",
            ));
        }
        match self.users.by_id(&claims.sub).await? {
            Some(u) if !u.disabled && u.is_admin() => Ok(claims),
            _ => Err(Error::new(
                ErrorCode::Forbidden,
                "the admin role is required",
            )),
        }
    }

    /// One pass of multi-instance synchronisation: key changes and new revocations.
    pub async fn sync(&self, now: i64) -> Result<()> {
        self.keys.reload(now).await?;
        self.denylist.sync().await?;
        Ok(())
    }
}
