//! The login use case: one password check shared by `/auth/login` and the OAuth password
//! grant, so both doors apply the same rules in the same order:
//!
//! 1. a username over 64 bytes is a `VALIDATION_ERROR` before anything is counted or stored;
//! 2. the attempt is counted by the shared limiter *before* hashing (refused: 429, no argon2);
//! 3. one argon2 verification, against a dummy hash for unknown users;
//! 4. failures are audited as one record per (address, username, minute) with a count.

use serde_json::json;

use crate::audit::{self, Event};
use crate::error::{Error, ErrorCode, Result};
use crate::metrics::Login;
use crate::ratelimit::ThrottledBy;
use crate::sessions::{Grant, TokenPair};
use crate::state::App;
use crate::tokens::AccessClaims;
use crate::users::User;

/// A sign-in with a password: through `/auth/login` (no client, first-party) or the OAuth
/// password grant (a client, its audience, the scope already checked against it).
pub struct SignIn<'a> {
    pub username: &'a str,
    pub password: &'a str,
    /// The client address ([`crate::net::limit_key`]).
    pub addr: Option<&'a str>,
    pub client: Option<&'a crate::clients::Client>,
    pub scope: String,
}

/// Check the password, start a session (a new refresh family), audit the login.
pub async fn sign_in(app: &App, req: SignIn<'_>) -> Result<TokenPair> {
    let now = app.now();
    let user = check_password(app, req.username, req.password, req.addr, now).await?;
    let grant = Grant {
        user,
        client_id: req.client.map(|c| c.client_id.clone()),
        audience: req
            .client
            .and_then(|c| c.audience.clone())
            .unwrap_or_else(|| app.config.audience.clone()),
        scope: req.scope,
        sso: None,
    };
    let pair = app.sessions.start(grant, now).await?;
    let a = &pair.access;
    audit::record(
        &app.db,
        Event::new("login", "ok")
            .subject(Some(&a.sub))
            .ip(req.addr)
            .detail(json!({"client_id": a.client_id, "sid": a.sid, "jti": a.jti})),
        now,
    )
    .await;
    Ok(pair)
}

/// The hosted login page's sign-in: the same password check (throttling before hashing, one
/// argon2, aggregated audit), then a browser (SSO) session instead of a token pair. The
/// browser's `current` session, when it is the same user's, is renewed (same `sid`, a new
/// auth time); another user's is ended. Returns the session, its cookie secret and the user.
pub async fn sign_in_browser(
    app: &App,
    username: &str,
    password: &str,
    addr: Option<&str>,
    current: Option<&crate::oidc::sso::SsoSession>,
) -> Result<(crate::oidc::sso::SsoSession, String, User)> {
    use crate::oidc::sso;
    let now = app.now();
    let user = check_password(app, username, password, addr, now).await?;
    let renewed = match current {
        Some(c) if c.user_id == user.id => sso::reauthenticate(app, c, now).await?,
        Some(c) => {
            sso::end(app, &c.id, "another user signed in", now).await?;
            None
        }
        None => None,
    };
    let (session, secret) = match renewed {
        Some(r) => r,
        None => sso::create(app, &user.id, now).await?,
    };
    audit::record(
        &app.db,
        Event::new("login", "ok")
            .subject(Some(&user.id))
            .ip(addr)
            .detail(json!({"sso": session.id, "via": "hosted login"})),
        now,
    )
    .await;
    Ok((session, secret, user))
}

/// Log out: revoke the presented access token and its session, and the session of
/// `refresh_token` when it is the same user's; audited.
pub async fn sign_out(app: &App, claims: &AccessClaims, refresh_token: Option<&str>) -> Result<()> {
    let now = app.now();
    app.sessions.logout(claims, refresh_token, now).await?;
    audit::record(
        &app.db,
        Event::new("token.revoke", "ok")
            .actor(Some(&claims.sub))
            .subject(Some(&claims.sub))
            .detail(json!({"reason": "logout", "jti": claims.jti, "sid": claims.sid})),
        now,
    )
    .await;
    Ok(())
}

/// Log out a session known only by its refresh token (cookie mode, access cookie expired):
/// revoke its family; audited.
pub async fn sign_out_family(app: &App, sub: &str, family: &str) -> Result<()> {
    let now = app.now();
    app.sessions.revoke_family(family, "logout", now).await?;
    audit::record(
        &app.db,
        Event::new("token.revoke", "ok")
            .actor(Some(sub))
            .subject(Some(sub))
            .detail(json!({"reason": "logout", "sid": family})),
        now,
    )
    .await;
    Ok(())
}

/// Longest username accepted at login, in bytes.
pub const MAX_USERNAME: usize = 64;

fn bad_credentials() -> Error {
    Error::new(
        ErrorCode::InvalidCredentials,
        "invalid username or password",
    )
}

/// Check `username` and `password` from client address `addr` (a [`crate::net::limit_key`]).
/// Unknown user, wrong password and disabled user all cost one argon2 verification and give
/// the same `INVALID_CREDENTIALS`.
pub async fn check_password(
    app: &App,
    username: &str,
    password: &str,
    addr: Option<&str>,
    now: i64,
) -> Result<User> {
    if username.len() > MAX_USERNAME {
        return Err(Error::validation(format!(
            "username must be at most {MAX_USERNAME} bytes"
        )));
    }
    let minute = now / 60;
    let attempt = match app.limiter.begin(username, addr, now).await? {
        Ok(a) => a,
        Err(t) => {
            app.metrics.login(Login::Throttled);
            // An address over its limit is one record per minute, whatever usernames it tries.
            let (key, detail) = match t.by {
                ThrottledBy::Address => (
                    format!("login.throttled|{}|{minute}", addr.unwrap_or("-")),
                    json!({"limit": "address", "retry_after": t.wait}),
                ),
                ThrottledBy::Username => (
                    format!(
                        "login.throttled|{}|{}|{minute}",
                        addr.unwrap_or("-"),
                        username.to_ascii_lowercase()
                    ),
                    json!({"limit": "username", "username": username, "retry_after": t.wait}),
                ),
            };
            app.repeats
                .record(
                    &app.db,
                    Event::new("login", "throttled").ip(addr).detail(detail),
                    &key,
                    now,
                )
                .await;
            return Err(Error::rate_limited(t.wait));
        }
    };
    let creds = if crate::users::validate_username(username).is_ok() {
        app.users.by_username(username).await?
    } else {
        None
    };
    let ok = app
        .users
        .hasher()
        .verify(creds.as_ref().map(|c| c.password_hash.as_str()), password)
        .await?;
    match creds {
        Some(c) if ok && !c.user.disabled => {
            if let Err(e) = app.limiter.succeeded(&attempt, now).await {
                // The login stands; the next failure will simply count from a higher base.
                tracing::warn!("cannot reset login throttling: {e}");
            }
            app.metrics.login(Login::Ok);
            Ok(c.user)
        }
        other => {
            app.metrics.login(Login::Failed);
            let subject = other.map(|c| c.user.id);
            let key = format!(
                "login.failed|{}|{}|{minute}",
                addr.unwrap_or("-"),
                username.to_ascii_lowercase()
            );
            audit::record_repeated(
                &app.db,
                Event::new("login", "failed")
                    .subject(subject.as_deref())
                    .ip(addr)
                    .detail(json!({"username": username})),
                &key,
                now,
            )
            .await;
            Err(bad_credentials())
        }
    }
}
