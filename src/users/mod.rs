//! Users: the account rules and the use cases that both the admin API and the CLI call, so the
//! two doors cannot diverge (creating, changing, deleting a user, ending their sessions; each
//! audited in one shape). Storage is in `store`, hashing in `password`.

mod password;
mod store;

pub use password::{PasswordHasher, hash_blocking, verify_blocking};
pub use store::{Credentials, OUTAGE_GRACE, UserChange, UserStore};

use serde::Serialize;
use serde_json::json;

use crate::audit::{self, Actor, Event};
use crate::error::{Error, Result};
use crate::state::App;

/// The role that may call `/admin/*`.
pub const ADMIN_ROLE: &str = "admin";

/// A user as the API shows it: never the hash.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub roles: Vec<String>,
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Display name (OpenID Connect `name`).
    pub name: Option<String>,
    /// OpenID Connect `email`; set by an admin, so never claimed as verified.
    pub email: Option<String>,
}

impl User {
    fn from_row(r: &crate::db::entities::users::Model) -> Self {
        User {
            id: r.id.clone(),
            username: r.username.clone(),
            roles: serde_json::from_str(&r.roles).unwrap_or_default(),
            disabled: r.disabled,
            created_at: r.created_at,
            name: r.name.clone(),
            email: r.email.clone(),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ADMIN_ROLE)
    }
}

/// Usernames: 1–64 characters of letters, digits and `._@-`.
pub fn validate_username(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if name.is_empty() || name.len() > 64 || !ok_chars {
        return Err("username must be 1-64 characters of letters, digits and . _ @ -".into());
    }
    Ok(())
}

/// Passwords: 8–1024 bytes (NIST SP 800-63B minimum; the maximum bounds hashing cost).
pub fn validate_password(pw: &str) -> Result<(), String> {
    let n = pw.chars().count();
    if !(8..=1024).contains(&n) {
        return Err("password must be 8 to 1024 characters long".into());
    }
    Ok(())
}

/// A display name: 1–128 characters, no control characters. An empty one clears it.
pub fn validate_name(name: &str) -> Result<Option<String>, String> {
    let t = name.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.chars().count() > 128 || t.chars().any(char::is_control) {
        return Err("name must be at most 128 characters, without control characters".into());
    }
    Ok(Some(t.to_string()))
}

/// An email address: `local@domain`, at most 254 bytes, no spaces or control characters. An
/// empty one clears it. (Deliverability is not keymint's to check.)
pub fn validate_email(email: &str) -> Result<Option<String>, String> {
    let t = email.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let ok = t.len() <= 254
        && !t.chars().any(|c| c.is_whitespace() || c.is_control())
        && t.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if !ok {
        return Err("email must look like name@domain (at most 254 bytes)".into());
    }
    Ok(Some(t.to_string()))
}

/// Optional profile of a user (OpenID Connect `name` and `email`).
#[derive(Clone, Debug, Default)]
pub struct Profile {
    pub name: Option<String>,
    pub email: Option<String>,
}

/// Roles: 1–32 of them, each 1–32 characters of lowercase letters, digits and `_:-`.
pub fn validate_roles(roles: &[String]) -> Result<Vec<String>, String> {
    if roles.len() > 32 {
        return Err("at most 32 roles".into());
    }
    let mut out: Vec<String> = Vec::new();
    for r in roles {
        let ok = !r.is_empty()
            && r.len() <= 32
            && r.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_:-".contains(c));
        if !ok {
            return Err(format!("invalid role {r:?}: use 1-32 of a-z 0-9 _ : -"));
        }
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    Ok(out)
}

/// Create a user (`CONFLICT` when the name is taken).
pub async fn create(
    app: &App,
    actor: Actor<'_>,
    username: &str,
    password: &str,
    roles: &[String],
    profile: Profile,
) -> Result<User> {
    let now = app.now();
    let user = app
        .users
        .create_with(username, password, roles, profile, now)
        .await?;
    audit::record(
        &app.db,
        Event::new("user.create", "ok")
            .actor(Some(actor.name()))
            .subject(Some(&user.id))
            .detail(json!({"username": user.username, "roles": user.roles})),
        now,
    )
    .await;
    Ok(user)
}

/// Apply `change` to user `id` at once. A new password or disabling ends every session of the
/// user. `CONFLICT` when it would leave no enabled admin. Returns the user and how many
/// sessions were ended.
pub async fn update(
    app: &App,
    actor: Actor<'_>,
    id: &str,
    change: UserChange,
) -> Result<(User, u64)> {
    let now = app.now();
    let revoke = change.password.is_some() || change.disabled == Some(true);
    let detail = json!({
        "roles": change.roles,
        "disabled": change.disabled,
        "password_changed": change.password.is_some(),
        "profile_changed": change.name.is_some() || change.email.is_some(),
    });
    let kind = if change.disabled == Some(true) {
        "user.disable"
    } else {
        "user.update"
    };
    let user = app.users.change(id, change, now).await?;
    let revoked = if revoke {
        app.sessions
            .revoke_user_sessions(id, "user updated", now)
            .await?
    } else {
        0
    };
    let mut detail = detail;
    detail["revoked_sessions"] = json!(revoked);
    audit::record(
        &app.db,
        Event::new(kind, "ok")
            .actor(Some(actor.name()))
            .subject(Some(id))
            .detail(detail),
        now,
    )
    .await;
    Ok((user, revoked))
}

/// Delete user `id` and end their sessions (`CONFLICT` for the last enabled admin). Returns
/// how many sessions were ended.
pub async fn delete(app: &App, actor: Actor<'_>, id: &str) -> Result<u64> {
    let now = app.now();
    let user = app
        .users
        .by_id(id)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    app.users.delete(id).await?;
    let revoked = app
        .sessions
        .revoke_user_sessions(id, "user deleted", now)
        .await?;
    audit::record(
        &app.db,
        Event::new("user.delete", "ok")
            .actor(Some(actor.name()))
            .subject(Some(id))
            .detail(json!({"username": user.username, "revoked_sessions": revoked})),
        now,
    )
    .await;
    Ok(revoked)
}

/// End every session (refresh family) of user `id`, and the access tokens issued from them.
pub async fn revoke_sessions(app: &App, actor: Actor<'_>, id: &str) -> Result<u64> {
    let now = app.now();
    if app.users.by_id(id).await?.is_none() {
        return Err(Error::not_found("user"));
    }
    let revoked = app
        .sessions
        .revoke_user_sessions(id, "sessions revoked", now)
        .await?;
    audit::record(
        &app.db,
        Event::new("token.revoke", "ok")
            .actor(Some(actor.name()))
            .subject(Some(id))
            .detail(json!({"reason": "revoke-sessions", "revoked_sessions": revoked})),
        now,
    )
    .await;
    Ok(revoked)
}

/// The user named `username`, or `NOT_FOUND`.
pub async fn by_name(app: &App, username: &str) -> Result<User> {
    app.users
        .by_username(username)
        .await?
        .map(|c| c.user)
        .ok_or_else(|| Error::not_found("user"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rules() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("a b").is_err());
        assert!(validate_username("../etc").is_err());
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
        assert_eq!(
            validate_roles(&["admin".into(), "admin".into()]).unwrap(),
            vec!["admin".to_string()]
        );
        assert!(validate_roles(&["Admin".into()]).is_err());
        assert_eq!(
            validate_email(" a@b.example ").unwrap().as_deref(),
            Some("a@b.example")
        );
        assert_eq!(validate_email("").unwrap(), None);
        assert!(validate_email("no-at").is_err());
        assert!(validate_email("a@b@c").is_err());
        assert!(validate_name("x\u{7}").is_err());
    }
}
