//! Attacks on the real server over TCP, one module per class (SPEC sections 4 and 6). Each
//! test asserts the bound an attack runs into (sockets held, attempts hashed, bytes written,
//! resident memory), not only the status code it gets.

mod authorization;
mod connections;
mod floods;
mod guessing;

use keymint::db::entities::audit_events;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

/// Raise this process's soft descriptor limit to the hard one (attack tests open thousands).
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain struct in, plain struct out.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

/// Value of one Prometheus sample line `name` (exact match of the part before the value).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Sum of `count` over login audit records with `outcome`, and how many records hold them
/// (after writing the repeated events the server holds for its next flush).
pub async fn login_audit(app: &keymint::state::App, outcome: &str) -> (i64, usize) {
    app.repeats.flush(&app.db).await;
    let db = &app.db;
    let rows = audit_events::Entity::find()
        .filter(audit_events::Column::Kind.eq("login"))
        .filter(audit_events::Column::Outcome.eq(outcome))
        .all(db)
        .await
        .unwrap();
    (rows.iter().map(|r| r.count).sum(), rows.len())
}
