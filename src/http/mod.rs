//! The HTTP surface: routers per area, the OpenAPI document built from the same routes, and
//! the cross-cutting layers (body limit, security headers, JSON 404).

pub mod admin;
pub mod admin_clients;
pub mod admin_users;
pub mod audit;
pub mod auth;
pub mod extract;
pub mod oauth;
pub mod ops;
pub mod well_known;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::Error;
use crate::openapi::ApiDoc;
use crate::state::AppState;

/// Request bodies above this are answered 413 `PAYLOAD_TOO_LARGE`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every documented route, with its OpenAPI entry.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(well_known::jwks))
        .routes(routes!(well_known::openid_configuration))
        .routes(routes!(well_known::oauth_authorization_server))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(oauth::token))
        .routes(routes!(oauth::revoke))
        .routes(routes!(oauth::introspect))
        .routes(routes!(admin::list_keys))
        .routes(routes!(admin::rotate_keys))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(admin_users::list_users, admin_users::create_user))
        .routes(routes!(
            admin_users::get_user,
            admin_users::update_user,
            admin_users::delete_user
        ))
        .routes(routes!(admin_users::revoke_sessions))
        .routes(routes!(
            admin_clients::list_clients,
            admin_clients::create_client
        ))
        .routes(routes!(
            admin_clients::get_client,
            admin_clients::delete_client
        ))
        .routes(routes!(audit::list_audit))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
}

/// The OpenAPI document, exactly as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

/// The complete application router.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api_router().split_for_parts();
    let https = state.config.is_https();
    api.with_state(state)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
        .fallback(|| async { Error::not_found("route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(move |req, next| {
            security_headers(req, next, https)
        }))
}

const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

async fn security_headers(req: Request, next: Next, https: bool) -> Response {
    let docs = req.uri().path().starts_with("/docs");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if docs {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        );
    }
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    resp
}
