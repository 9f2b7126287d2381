//! Scheduled jobs: key rotation (`KEYMINT_ROTATION_CRON`) and cleanup (`KEYMINT_CLEANUP_CRON`),
//! on tokio-cron-scheduler. They call the same functions as the admin API and the CLI.
//!
//! Architecture invariant: a job runs once per cron tick across every instance sharing the
//! database. An instance claims a tick by inserting `(job, tick)` into `job_runs`; the primary
//! key lets exactly one insert succeed, and the others skip that tick.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tokio_cron_scheduler::{Job as CronJob, JobScheduler};

use crate::audit::Actor;
use crate::db::entities::job_runs;
use crate::error::{Error, Result};
use crate::keys::Purpose;
use crate::state::App;

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

/// Whether `instance` holds the claim of `(job, tick)`.
async fn claimed_by(db: &DatabaseConnection, job: &str, tick: i64, instance: &str) -> Result<bool> {
    let row = job_runs::Entity::find()
        .filter(job_runs::Column::Job.eq(job))
        .filter(job_runs::Column::Tick.eq(tick))
        .one(db)
        .await?;
    Ok(row.is_some_and(|r| r.instance == instance))
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

/// The scheduled jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// `KEYMINT_ROTATION_CRON`: rotate both purposes.
    Rotate,
    /// `KEYMINT_CLEANUP_CRON`: one cleanup pass.
    Cleanup,
}

impl Job {
    pub const ALL: [Job; 2] = [Job::Rotate, Job::Cleanup];

    /// The name in `job_runs`.
    pub fn as_str(self) -> &'static str {
        match self {
            Job::Rotate => "rotate",
            Job::Cleanup => "cleanup",
        }
    }

    fn cron(self, app: &App) -> &str {
        match self {
            Job::Rotate => &app.config.rotation_cron,
            Job::Cleanup => &app.config.cleanup_cron,
        }
    }
}

/// Run `job` for the cron tick that `app.now()` falls in, unless some instance already ran
/// that tick. Returns whether this call ran it. The scheduler calls this when the cron fires;
/// tests call it after advancing the clock, instead of waiting for a tick.
///
/// A failure (the database away, a lost lock) is retried with backoff until it succeeds or the
/// next tick is due: one transient error never costs a rotation period. A rotation that
/// succeeded for one purpose is not repeated for it.
pub async fn run_due(app: &App, job: Job, instance: &str) -> Result<bool> {
    let schedule = crate::config::cron_schedule(job.cron(app)).map_err(Error::internal)?;
    let now = app.now();
    let Some(at) = DateTime::from_timestamp(now, 0) else {
        return Ok(false);
    };
    let Some(tick) = tick_of(&schedule, at) else {
        return Ok(false);
    };
    let next_tick = schedule
        .find_next_occurrence(&at, false)
        .map(|t| t.timestamp())
        .unwrap_or(i64::MAX);
    let mut claimed = false;
    let mut rotated: Vec<Purpose> = Vec::new();
    let mut wait = RETRY_FIRST;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = async {
            if !claimed {
                // On a retry, a claim that committed although its answer was lost is ours.
                let ours = claim(&app.db, job.as_str(), tick, instance, now).await?
                    || (attempt > 1 && claimed_by(&app.db, job.as_str(), tick, instance).await?);
                if !ours {
                    tracing::debug!(job = job.as_str(), tick, "another instance runs this tick");
                    return Ok(false);
                }
                claimed = true;
                tracing::info!(job = job.as_str(), tick, "scheduled job started");
            }
            run_claimed(app, job, now, tick, &mut rotated).await?;
            Ok(true)
        }
        .await;
        match result {
            Ok(ran) => return Ok(ran),
            Err(e) if app.now() + (wait.as_secs() as i64) < next_tick => {
                tracing::warn!(
                    job = job.as_str(),
                    tick,
                    attempt,
                    retry_in_ms = wait.as_millis() as u64,
                    "scheduled job failed, retrying: {e}"
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
            }
            Err(e) => return Err(e),
        }
    }
}

/// First and longest pause between attempts of a failed scheduled job.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(250);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

async fn run_claimed(
    app: &App,
    job: Job,
    now: i64,
    tick: i64,
    rotated: &mut Vec<Purpose>,
) -> Result<()> {
    match job {
        Job::Rotate => {
            for p in Purpose::ALL {
                if !rotated.contains(&p) {
                    let r = crate::keys::admin::rotate_one(app, Actor::Scheduler, p).await?;
                    // Committed: a retry of this tick must not rotate this purpose again.
                    rotated.push(p);
                    tracing::info!(tick, purpose = p.as_str(), active = %r.active, "rotated");
                }
            }
            tracing::info!(tick, "scheduled rotation done");
        }
        Job::Cleanup => {
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
    for job in Job::ALL {
        let expr = job.cron(&app).to_string();
        let (app, instance) = (app.clone(), instance.clone());
        let j = CronJob::new_async(expr.as_str(), move |_, _| {
            let (app, instance) = (app.clone(), instance.clone());
            Box::pin(async move {
                if let Err(e) = run_due(&app, job, &instance).await {
                    tracing::error!(job = job.as_str(), "scheduled job failed: {e}");
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
    let now = DateTime::from_timestamp(app.now(), 0).unwrap_or_else(Utc::now);
    let mut it = schedule.iter_after(now);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_firing_belongs_to_the_latest_tick_at_or_before_it() {
        // Weekly, Monday 03:00 UTC (the default).
        let weekly = crate::config::cron_schedule("0 0 3 * * Mon").unwrap();
        let tick = at("2026-11-30T03:00:00Z").timestamp(); // a Monday
        assert_eq!(tick_of(&weekly, at("2026-11-30T03:00:00Z")), Some(tick));
        assert_eq!(
            tick_of(&weekly, at("2026-11-30T02:59:59.5Z")),
            Some(tick),
            "early by <1 s"
        );
        assert_eq!(
            tick_of(&weekly, at("2026-12-03T12:00:00Z")),
            Some(tick),
            "mid-week"
        );
        assert_eq!(
            tick_of(&weekly, at("2026-12-07T03:00:00Z")),
            Some(tick + 7 * 86400)
        );
        let every3 = crate::config::cron_schedule("*/3 * * * * *").unwrap();
        assert_eq!(
            tick_of(&every3, at("2026-11-30T10:00:04Z")),
            Some(at("2026-11-30T10:00:03Z").timestamp())
        );
    }

    #[test]
    fn jobs_have_stable_names() {
        assert_eq!(Job::Rotate.as_str(), "rotate");
        assert_eq!(Job::Cleanup.as_str(), "cleanup");
    }
}
