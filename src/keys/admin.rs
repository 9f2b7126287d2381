//! Key use cases that the admin API, the CLI and the scheduler share: rotate and revoke, each
//! counted and audited in one shape.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ActiveAndNext, KeyInfo, Purpose};
use crate::audit::{self, Actor, Event};
use crate::error::Result;
use crate::state::App;

/// The active and next kid of each purpose after a rotation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RotationResult {
    pub access: ActiveAndNext,
    pub refresh: ActiveAndNext,
}

/// Rotate `purposes` now, audit it, and report both purposes' active and next kids.
pub async fn rotate(app: &App, actor: Actor<'_>, purposes: &[Purpose]) -> Result<RotationResult> {
    for p in purposes {
        rotate_one(app, actor, *p).await?;
    }
    Ok(RotationResult {
        access: app.keys.active_and_next(Purpose::Access).await?,
        refresh: app.keys.active_and_next(Purpose::Refresh).await?,
    })
}

/// Revoke a compromised key: unpublished and refused at once; the next key takes over if it
/// was active.
pub async fn revoke(app: &App, actor: Actor<'_>, kid: &str) -> Result<KeyInfo> {
    let now = app.now();
    let info = app.keys.revoke(kid, now).await?;
    audit::record(
        &app.db,
        Event::new("key.revoke", "ok")
            .actor(Some(actor.name()))
            .detail(json!({"kid": kid, "purpose": info.purpose})),
        now,
    )
    .await;
    Ok(info)
}

/// Rotate one purpose now and audit it. `Ok` means the rotation was committed.
pub async fn rotate_one(app: &App, actor: Actor<'_>, p: Purpose) -> Result<ActiveAndNext> {
    let now = app.now();
    let r = app.keys.rotate(p, now).await?;
    app.metrics.rotated();
    audit::record(
        &app.db,
        Event::new("key.rotate", "ok")
            .actor(Some(actor.name()))
            .detail(json!({"purpose": p.as_str(), "active": r.active, "next": r.next})),
        now,
    )
    .await;
    Ok(r)
}
