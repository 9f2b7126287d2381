//! `/admin/users`: user management and session revocation (admin role).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::Actor;
use crate::error::Error;
use crate::http::admin::Admin;
use crate::http::error::ErrorBody;
use crate::http::extract::ApiJson;
use crate::http::schemas::UserDoc;
use crate::state::AppState;
use crate::users::{self, User, UserChange};

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
    /// Display name (OpenID Connect `name`).
    #[schema(example = "Bob Example", max_length = 128)]
    pub name: Option<String>,
    /// OpenID Connect `email`.
    #[schema(example = "bob@example.com", max_length = 254)]
    pub email: Option<String>,
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
    /// A new display name; `""` clears it.
    #[schema(max_length = 128)]
    pub name: Option<String>,
    /// A new email; `""` clears it.
    #[schema(max_length = 254)]
    pub email: Option<String>,
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
        (status = 200, description = "Users by name", body = Vec<UserDoc>),
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
        (status = 201, description = "Created", body = UserDoc),
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
    let actor = Actor::User(&who.sub);
    let profile = users::Profile {
        name: req.name,
        email: req.email,
    };
    let user = users::create(&s, actor, &req.username, &req.password, &req.roles, profile).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// One user.
#[utoipa::path(get, path = "/admin/users/{id}", tag = "admin users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = UserDoc),
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

/// Change roles, name or email, disable or enable, or set a new password.
#[utoipa::path(patch, path = "/admin/users/{id}", tag = "admin users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "The updated user", body = UserDoc),
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
    let change = UserChange {
        roles: req.roles,
        disabled: req.disabled,
        password: req.password,
        name: req.name,
        email: req.email,
    };
    let (user, _) = users::update(&s, Actor::User(&who.sub), &id, change).await?;
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
    users::delete(&s, Actor::User(&who.sub), &id).await?;
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
    let revoked_sessions = users::revoke_sessions(&s, Actor::User(&who.sub), &id).await?;
    Ok(Json(RevokedSessions { revoked_sessions }))
}
