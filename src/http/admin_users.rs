//! `/admin/users`: user management and session revocation (admin role).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::{self, Event};
use crate::error::Error;
use crate::http::admin::Admin;
use crate::http::error::ErrorBody;
use crate::http::extract::ApiJson;
use crate::state::AppState;
use crate::users::User;

/// A new user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(
        example = "bob",
        pattern = "^[A-Za-z0-9._@-]+$",
        min_length = 1,
        max_length = 64
    )]
    pub username: String,
    #[schema(example = "a long passphrase", format = Password, min_length = 8, max_length = 1024)]
    pub password: String,
    #[serde(default)]
    #[schema(example = json!(["ops"]), value_type = Vec<RoleName>, max_items = 32)]
    pub roles: Vec<String>,
}

/// A role name (schema only): lowercase letters, digits and `_:-`.
#[derive(ToSchema)]
#[schema(pattern = "^[a-z0-9_:-]+$", min_length = 1, max_length = 32)]
#[allow(dead_code)] // schema only: never constructed
pub struct RoleName(String);

/// Fields to change; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[schema(value_type = Option<Vec<RoleName>>, max_items = 32)]
    pub roles: Option<Vec<String>>,
    /// Disabling revokes every session of the user.
    pub disabled: Option<bool>,
    /// A new password; also revokes every session of the user.
    #[schema(format = Password, min_length = 8, max_length = 1024)]
    pub password: Option<String>,
}

/// How many refresh families were revoked.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"revoked_sessions": 2}))]
pub struct RevokedSessions {
    pub revoked_sessions: u64,
}

async fn user_or_404(s: &AppState, id: &str) -> Result<User, Error> {
    s.users
        .by_id(id)
        .await?
        .ok_or_else(|| Error::not_found("user"))
}

#[utoipa::path(get, path = "/admin/users", tag = "admin users", security(("bearer" = [])),
    responses(
        (status = 200, description = "Users by name", body = Vec<User>),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody),
    ))]
pub async fn list_users(State(s): State<AppState>, _: Admin) -> Result<Json<Vec<User>>, Error> {
    Ok(Json(s.users.list().await?))
}

/// Create a user.
#[utoipa::path(post, path = "/admin/users", tag = "admin users", security(("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = User),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody),
        (status = 409, description = "CONFLICT: the username is taken", body = ErrorBody),
    ))]
pub async fn create_user(
    State(s): State<AppState>,
    Admin(who): Admin,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<User>), Error> {
    let now = s.now();
    let user = s
        .users
        .create(&req.username, &req.password, &req.roles, now)
        .await?;
    audit::record(
        &s.db,
        Event::new("user.create", "ok")
            .actor(Some(&who.sub))
            .subject(Some(&user.id))
            .detail(json!({"username": user.username, "roles": user.roles})),
        now,
    )
    .await;
    Ok((StatusCode::CREATED, Json(user)))
}

/// One user.
#[utoipa::path(get, path = "/admin/users/{id}", tag = "admin users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ))]
pub async fn get_user(
    State(s): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<User>, Error> {
    Ok(Json(user_or_404(&s, &id).await?))
}

/// Change roles, disable or enable, or set a new password.
#[utoipa::path(patch, path = "/admin/users/{id}", tag = "admin users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
        (status = 409, description = "CONFLICT: the change would leave no enabled admin", body = ErrorBody),
    ))]
pub async fn update_user(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateUser>,
) -> Result<Json<User>, Error> {
    let now = s.now();
    let revoke = req.password.is_some() || req.disabled == Some(true);
    let change = crate::users::UserChange {
        roles: req.roles.clone(),
        disabled: req.disabled,
        password: req.password.clone(),
    };
    let user = s.users.change(&id, change, now).await?;
    let revoked = if revoke {
        s.sessions
            .revoke_user_sessions(&id, "user updated", now)
            .await?
    } else {
        0
    };
    let kind = if req.disabled == Some(true) {
        "user.disable"
    } else {
        "user.update"
    };
    audit::record(&s.db, Event::new(kind, "ok").actor(Some(&who.sub)).subject(Some(&id))
        .detail(json!({"roles": req.roles, "disabled": req.disabled, "password_changed": req.password.is_some(), "revoked_sessions": revoked})), now).await;
    Ok(Json(user))
}

/// Delete a user and revoke their sessions.
#[utoipa::path(delete, path = "/admin/users/{id}", tag = "admin users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
        (status = 409, description = "CONFLICT: the last enabled admin cannot be deleted", body = ErrorBody),
    ))]
pub async fn delete_user(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    let now = s.now();
    let user = user_or_404(&s, &id).await?;
    s.users.delete(&id).await?;
    let revoked = s
        .sessions
        .revoke_user_sessions(&id, "user deleted", now)
        .await?;
    audit::record(
        &s.db,
        Event::new("user.delete", "ok")
            .actor(Some(&who.sub))
            .subject(Some(&id))
            .detail(json!({"username": user.username, "revoked_sessions": revoked})),
        now,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Revoke every session (refresh family) of a user, and the access tokens issued from them.
#[utoipa::path(post, path = "/admin/users/{id}/revoke-sessions", tag = "admin users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "How many sessions were revoked", body = RevokedSessions),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ))]
pub async fn revoke_sessions(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> Result<Json<RevokedSessions>, Error> {
    let now = s.now();
    user_or_404(&s, &id).await?;
    let n = s
        .sessions
        .revoke_user_sessions(&id, "admin revoke-sessions", now)
        .await?;
    audit::record(
        &s.db,
        Event::new("token.revoke", "ok")
            .actor(Some(&who.sub))
            .subject(Some(&id))
            .detail(json!({"reason": "revoke-sessions", "revoked_sessions": n})),
        now,
    )
    .await;
    Ok(Json(RevokedSessions {
        revoked_sessions: n,
    }))
}
