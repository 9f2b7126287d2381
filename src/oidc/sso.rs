//! Browser (single-sign-on) sessions: what `km_sso` names. The cookie carries a 256-bit
//! secret; the table keeps only its SHA-256, beside a public id (the ID token's `sid`), the
//! user and the time they authenticated. Ending one ends the refresh families it started.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::{digest, random_secret};
use crate::db::entities::sso_sessions::{self as sso, Column as C, Entity as Sso};
use crate::error::Result;
use crate::state::App;

/// A live browser session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoSession {
    /// Public id: the ID token's `sid`, the refresh families' `sso_id`.
    pub id: String,
    pub user_id: String,
    /// When the user last entered their password (Unix seconds).
    pub auth_time: i64,
    pub expires_at: i64,
}

impl SsoSession {
    fn from_row(r: sso::Model) -> Self {
        SsoSession {
            id: r.id,
            user_id: r.user_id,
            auth_time: r.auth_time,
            expires_at: r.expires_at,
        }
    }
}

/// Start a session for `user_id`, authenticated now; returns it and the cookie's secret.
pub async fn create(app: &App, user_id: &str, now: i64) -> Result<(SsoSession, String)> {
    let secret = random_secret();
    let row = sso::Model {
        id: uuid::Uuid::new_v4().simple().to_string(),
        secret_hash: digest(&secret),
        user_id: user_id.to_string(),
        auth_time: now,
        created_at: now,
        expires_at: now + app.config.sso_ttl.as_secs() as i64,
        ended_at: None,
    };
    Sso::insert(sso::ActiveModel::from(row.clone()))
        .exec_without_returning(&app.db)
        .await?;
    Ok((SsoSession::from_row(row), secret))
}

/// The user of live session `current` signed in again (`prompt=login`, `max_age`): the same
/// session (its `sid`, its relying parties) with a new auth time, a new secret and a new
/// lifetime. Returns `None` when `current` is gone.
pub async fn reauthenticate(
    app: &App,
    current: &SsoSession,
    now: i64,
) -> Result<Option<(SsoSession, String)>> {
    let secret = random_secret();
    let expires_at = now + app.config.sso_ttl.as_secs() as i64;
    let res = Sso::update_many()
        .col_expr(C::SecretHash, Expr::value(digest(&secret)))
        .col_expr(C::AuthTime, Expr::value(now))
        .col_expr(C::ExpiresAt, Expr::value(expires_at))
        .filter(C::Id.eq(current.id.clone()))
        .filter(C::EndedAt.is_null())
        .exec(&app.db)
        .await?;
    Ok((res.rows_affected == 1).then(|| {
        let s = SsoSession {
            id: current.id.clone(),
            user_id: current.user_id.clone(),
            auth_time: now,
            expires_at,
        };
        (s, secret)
    }))
}

/// The live session whose cookie secret is `secret`.
pub async fn find(app: &App, secret: &str, now: i64) -> Result<Option<SsoSession>> {
    if secret.len() > 64 {
        return Ok(None);
    }
    live(app, C::SecretHash.eq(digest(secret)), now).await
}

/// The live session with public id `id`.
pub async fn find_by_id(app: &App, id: &str, now: i64) -> Result<Option<SsoSession>> {
    live(app, C::Id.eq(id), now).await
}

async fn live(
    app: &App,
    which: sea_orm::sea_query::SimpleExpr,
    now: i64,
) -> Result<Option<SsoSession>> {
    Ok(Sso::find()
        .filter(which)
        .filter(C::EndedAt.is_null())
        .filter(C::ExpiresAt.gt(now))
        .one(&app.db)
        .await?
        .map(SsoSession::from_row))
}

/// End session `id` and revoke every refresh family it started (and their access tokens).
/// Returns how many families were revoked.
pub async fn end(app: &App, id: &str, reason: &str, now: i64) -> Result<u64> {
    Sso::update_many()
        .col_expr(C::EndedAt, Expr::value(now))
        .filter(C::Id.eq(id))
        .filter(C::EndedAt.is_null())
        .exec(&app.db)
        .await?;
    app.sessions.revoke_sso(id, reason, now).await
}
