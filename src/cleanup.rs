//! Cleanup: delete revocations, refresh tokens, refresh families and retired keys past their
//! expiry. Deletes run in small batches with a pause between them, so a pass over millions of
//! rows never holds a lock long enough to stall request handling (on SQLite each batch is one
//! short write transaction). Safe to run on several instances at once: deletes are idempotent.

use std::time::{Duration, Instant};

use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter};
use serde::Serialize;
use serde_json::json;

use crate::audit::{self, Event};
use crate::db::entities::{
    audit_events, auth_codes, login_limits, refresh_families, refresh_tokens, revocations,
    signing_keys, sso_sessions,
};
use crate::error::Result;
use crate::state::App;

/// Rows deleted per statement.
pub const BATCH: u64 = 1000;
/// Pause between batches, leaving the database to request handling.
const PAUSE: Duration = Duration::from_millis(2);

/// What one pass removed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CleanupReport {
    pub revocations: u64,
    pub refresh_tokens: u64,
    pub refresh_families: u64,
    pub keys: u64,
    /// PKCS#11 token objects destroyed (two per removed or revoked `pkcs11` key).
    pub hsm_objects: u64,
    /// Audit events older than `KEYMINT_AUDIT_RETENTION`.
    pub audit_events: u64,
    /// Expired login-throttling state.
    pub login_limits: u64,
    /// Expired SSO sessions and authorization codes.
    pub browser: u64,
    pub duration_ms: u64,
}

/// Delete every row of `E` matching `cond`, `BATCH` primary keys at a time.
async fn delete_batched<E: EntityTrait + Default>(
    db: &DatabaseConnection,
    pk: E::Column,
    cond: Condition,
) -> Result<u64>
where
    E::Column: ColumnTrait,
{
    let mut total = 0;
    loop {
        let ids = Query::select()
            .column(pk)
            .from(E::default())
            .cond_where(cond.clone())
            .limit(BATCH)
            .to_owned();
        let n = E::delete_many()
            .filter(pk.in_subquery(ids))
            .exec(db)
            .await?
            .rows_affected;
        total += n;
        if n < BATCH {
            return Ok(total);
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// One cleanup pass at `now`, recorded in the audit log.
pub async fn run(app: &App, now: i64) -> Result<CleanupReport> {
    let started = Instant::now();
    let db = &app.db;
    let leeway = app.tokens.leeway;
    // Token objects first, rows after: a key's row is never gone while its object remains.
    // An instance without the token leaves `pkcs11` keys to one that has it.
    // A token error keeps the `pkcs11` rows for the next pass; the rest of cleanup goes on.
    let (hsm_objects, token_ok) = match app.keys.has_hsm() {
        true => match app.keys.destroy_removed(now).await {
            Ok(n) => (n, true),
            Err(e) => {
                tracing::warn!("cleanup could not destroy PKCS#11 objects: {e}");
                (0, false)
            }
        },
        false => (0, false),
    };
    let mut removable_keys = Condition::all()
        .add(signing_keys::Column::State.eq(crate::keys::KeyState::Retired.as_str()))
        .add(signing_keys::Column::ExpiresAt.lte(now));
    if !token_ok {
        removable_keys = removable_keys
            .add(signing_keys::Column::Backend.eq(crate::keys::Backend::Local.as_str()));
    }
    let mut r = CleanupReport {
        revocations: delete_batched::<revocations::Entity>(
            db,
            revocations::Column::Id,
            Condition::all().add(revocations::Column::ExpiresAt.lte(now)),
        )
        .await?,
        refresh_tokens: delete_batched::<refresh_tokens::Entity>(
            db,
            refresh_tokens::Column::Jti,
            Condition::all().add(refresh_tokens::Column::ExpiresAt.lte(now - leeway)),
        )
        .await?,
        refresh_families: delete_batched::<refresh_families::Entity>(
            db,
            refresh_families::Column::Id,
            Condition::all().add(refresh_families::Column::ExpiresAt.lte(now - leeway)),
        )
        .await?,
        keys: delete_batched::<signing_keys::Entity>(db, signing_keys::Column::Kid, removable_keys)
            .await?,
        hsm_objects,
        audit_events: delete_batched::<audit_events::Entity>(
            db,
            audit_events::Column::Id,
            Condition::all().add(
                audit_events::Column::At.lt(now - app.config.audit_retention.as_secs() as i64),
            ),
        )
        .await?,
        login_limits: delete_batched::<login_limits::Entity>(
            db,
            login_limits::Column::Key,
            Condition::all().add(login_limits::Column::ExpiresAt.lt(now)),
        )
        .await?,
        browser: delete_batched::<sso_sessions::Entity>(
            db,
            sso_sessions::Column::Id,
            Condition::all().add(sso_sessions::Column::ExpiresAt.lte(now)),
        )
        .await?
            // Spent codes stay 10 minutes past expiry, so a late second use still revokes
            // what the first one issued.
            + delete_batched::<auth_codes::Entity>(
                db,
                auth_codes::Column::CodeHash,
                Condition::all().add(auth_codes::Column::ExpiresAt.lte(now - 600)),
            )
            .await?,
        duration_ms: 0,
    };
    if r.keys > 0 {
        app.keys.reload(now).await?;
    }
    r.duration_ms = started.elapsed().as_millis() as u64;
    app.metrics.cleanup(
        r.revocations
            + r.refresh_tokens
            + r.refresh_families
            + r.keys
            + r.audit_events
            + r.login_limits
            + r.browser,
        r.duration_ms,
    );
    tracing::info!(?r, "cleanup pass done");
    audit::record(
        db,
        Event::new("cleanup", "ok")
            .actor(Some("scheduler"))
            .detail(json!(r)),
        now,
    )
    .await;
    Ok(r)
}
