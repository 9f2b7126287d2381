//! `/admin/clients`: OAuth client management (admin role).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::Actor;
use crate::clients::{self, Client, NewClient};
use crate::error::Error;
use crate::http::admin::Admin;
use crate::http::auth::no_store;
use crate::http::error::ErrorBody;
use crate::http::extract::ApiJson;
use crate::http::schemas::{ClientDoc, NewClientDoc};
use crate::state::AppState;

/// A new client with its secret: shown once, never retrievable again.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"client_id": "c_5f2b8e0c9a7d4f1e8b3a6c2d1e0f9a8b", "name": "billing-service", "grant_types": ["client_credentials"], "scopes": ["billing:read"], "audience": "https://billing.example", "created_at": 1795434478, "redirect_uris": [], "post_logout_redirect_uris": [], "public": false, "consent": false, "client_secret": "k3Xq9Vt0bF2mYp7sLw4Hn8Rc1Jd6Ge5Az0Uy3Ko9Ti"}))]
pub struct CreatedClient {
    #[serde(flatten)]
    #[schema(value_type = crate::http::schemas::ClientDoc)]
    pub client: Client,
    /// 256 random bits, base64url. Store it now: keymint keeps only its SHA-256 digest.
    /// `null` for a public client, which has none.
    pub client_secret: Option<String>,
}

/// Every client (without secrets).
#[utoipa::path(get, path = "/admin/clients", tag = "admin clients", security(("bearer" = [])),
    responses(
        (status = 200, description = "Clients", body = Vec<ClientDoc>),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody),
    ))]
pub async fn list_clients(State(s): State<AppState>, _: Admin) -> Result<Json<Vec<Client>>, Error> {
    Ok(Json(s.clients.list().await?))
}

/// Register a client; the response carries its secret, once.
#[utoipa::path(post, path = "/admin/clients", tag = "admin clients", security(("bearer" = [])),
    request_body = NewClientDoc,
    responses(
        (status = 201, description = "Created; `client_secret` is shown only here", body = CreatedClient),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody),
    ))]
pub async fn create_client(
    State(s): State<AppState>,
    Admin(who): Admin,
    ApiJson(req): ApiJson<NewClient>,
) -> Result<(StatusCode, axum::response::Response), Error> {
    use axum::response::IntoResponse;
    let (client, client_secret) = clients::create(&s, Actor::User(&who.sub), &req).await?;
    let body = Json(CreatedClient {
        client,
        client_secret,
    });
    Ok((StatusCode::CREATED, no_store(body.into_response())))
}

/// One client.
#[utoipa::path(get, path = "/admin/clients/{id}", tag = "admin clients", security(("bearer" = [])),
    params(("id" = String, Path, description = "client_id")),
    responses(
        (status = 200, description = "The client", body = ClientDoc),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ))]
pub async fn get_client(
    State(s): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Client>, Error> {
    s.clients
        .get(&id)
        .await?
        .map(Json)
        .ok_or_else(|| Error::not_found("client"))
}

/// Delete a client: its refresh families and access tokens are revoked.
#[utoipa::path(delete, path = "/admin/clients/{id}", tag = "admin clients", security(("bearer" = [])),
    params(("id" = String, Path, description = "client_id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "MISSING_TOKEN, INVALID_TOKEN, TOKEN_EXPIRED or TOKEN_REVOKED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ))]
pub async fn delete_client(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    clients::delete(&s, Actor::User(&who.sub), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
