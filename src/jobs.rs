//! Scheduled jobs: key rotation (`KEYMINT_ROTATION_CRON`) and cleanup (`KEYMINT_CLEANUP_CRON`),
//! on tokio-cron-scheduler. They call the same functions as the admin API and the CLI.
//!
//! Architecture invariant: a job runs once per cron tick across every instance sharing the
//! database. An instance claims a tick by inserting `(job, tick)` into `job_runs`; the primary
//! key lets exactly one insert succeed, and the others skip that tick.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_cron_scheduler::{Job, JobScheduler};
use utoipa::ToSchema;

use crate::audit::{self, Event};
use crate::db::entities::job_runs;
use crate::error::{Error, Result};
use crate::keys::{ActiveAndNext, Purpose};
use crate::state::App;

/// The active and next kid of each purpose after a rotation.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"access": {"active": "kid-a2", "next": "kid-a3"}, "refresh": {"active": "kid-r1", "next": "kid-r2"}}))]
pub struct RotationResult {
    pub access: ActiveAndNext,
    pub refresh: ActiveAndNext,
}

/// Rotate `purposes` now, audit it, and report both purposes' active and next kids.
pub async fn rotate(
    app: &App,
    purposes: &[Purpose],
    actor: &str,
    now: i64,
) -> Result<RotationResult> {
    for p in purposes {
        let r = app.keys.rotate(*p, now).await?;
        app.metrics.rotated();
        audit::record(
            &app.db,
            Event::new("key.rotate", "ok")
                .actor(Some(actor))
                .detail(json!({"purpose": p.as_str(), "active": r.active, "next": r.next})),
            now,
        )
        .await;
    }
    Ok(RotationResult {
        access: app.keys.active_and_next(Purpose::Access).await?,
        refresh: app.keys.active_and_next(Purpose::Refresh).await?,
    })
}

/// Claim `(job, tick)` for this instance. True when this instance should run the job.
pub async fn claim(
    db: &DatabaseConnection,
    job: &str,
    tick: i64,
    instance: &str,
    now: i64,
) -> Result<bool> {
    let row = job_runs::ActiveModel {
        job: Set(job.into()),
        tick: Set(tick),
        instance: Set(instance.into()),
        started_at: Set(now),
    };
    match job_runs::Entity::insert(row)
        .exec_without_returning(db)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if crate::db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The cron occurrence a firing at `now` belongs to: the latest one at or before `now`
/// (with a second of slack for a scheduler that fires a hair early).
pub fn tick_of(schedule: &croner::Cron, now: DateTime<Utc>) -> Option<i64> {
    schedule
        .find_previous_occurrence(&(now + chrono::Duration::seconds(1)), true)
        .ok()
        .map(|t| t.timestamp())
}

/// Drop `job_runs` rows older than this; they only guard recent ticks.
const JOB_RUNS_KEEP: i64 = 30 * 86400;

async fn run_claimed(
    app: &App,
    job: &'static str,
    schedule: &croner::Cron,
    instance: &str,
) -> Result<()> {
    let at = Utc::now();
    let Some(tick) = tick_of(schedule, at) else {
        return Ok(());
    };
    let now = at.timestamp();
    if !claim(&app.db, job, tick, instance, now).await? {
        tracing::debug!(job, tick, "another instance runs this tick");
        return Ok(());
    }
    match job {
        "rotate" => {
            let r = rotate(app, &Purpose::ALL, "scheduler", now).await?;
            tracing::info!(tick, access = %r.access.active, refresh = %r.refresh.active, "scheduled rotation done");
        }
        _ => {
            crate::cleanup::run(app, now).await?;
            job_runs::Entity::delete_many()
                .filter(job_runs::Column::Tick.lt(now - JOB_RUNS_KEEP))
                .exec(&app.db)
                .await?;
        }
    }
    Ok(())
}

/// Start the scheduler with the rotation and cleanup jobs.
pub async fn start(app: Arc<App>) -> Result<JobScheduler> {
    let sched = JobScheduler::new().await.map_err(Error::internal)?;
    let instance = uuid::Uuid::new_v4().simple().to_string();
    for (job, expr) in [
        ("rotate", app.config.rotation_cron.clone()),
        ("cleanup", app.config.cleanup_cron.clone()),
    ] {
        let schedule = crate::config::cron_schedule(&expr).map_err(Error::internal)?;
        let (app, instance) = (app.clone(), instance.clone());
        let j = Job::new_async(expr.as_str(), move |_, _| {
            let (app, instance, schedule) = (app.clone(), instance.clone(), schedule.clone());
            Box::pin(async move {
                if let Err(e) = run_claimed(&app, job, &schedule, &instance).await {
                    tracing::error!(job, "scheduled job failed: {e}");
                }
            })
        })
        .map_err(Error::internal)?;
        sched.add(j).await.map_err(Error::internal)?;
    }
    warn_if_rotation_outpaces_caches(&app);
    sched.start().await.map_err(Error::internal)?;
    Ok(sched)
}

/// A next key is published for one rotation period before it signs; if that period is shorter
/// than the JWKS cache lifetime, a verifier's cached JWKS may lack the signing kid.
fn warn_if_rotation_outpaces_caches(app: &App) {
    let Ok(schedule) = crate::config::cron_schedule(&app.config.rotation_cron) else {
        return;
    };
    let mut it = schedule.iter_after(Utc::now());
    if let (Some(a), Some(b)) = (it.next(), it.next()) {
        let period = (b - a).num_seconds();
        if period <= app.config.jwks_max_age.as_secs() as i64 {
            tracing::warn!(
                period_secs = period,
                jwks_max_age_secs = app.config.jwks_max_age.as_secs(),
                "KEYMINT_ROTATION_CRON fires more often than KEYMINT_JWKS_MAX_AGE: verifiers may see a kid before their cache does"
            );
        }
    }
}
