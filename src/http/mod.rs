//! The HTTP surface: routers per area, the OpenAPI document built from the same routes, and
//! the cross-cutting layers (body limit, security headers, JSON 404).

pub mod admin;
pub mod admin_clients;
pub mod admin_users;
pub mod audit;
pub mod auth;
pub mod browser;
pub mod cookies;
pub mod error;
pub mod extract;
pub mod oauth;
pub mod oauth_form;
pub mod oidc;
pub mod ops;
pub mod pages;
pub mod revocations;
pub mod schemas;
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
        .routes(routes!(revocations::revocations))
        .routes(routes!(oidc::authorize_get, oidc::authorize_post))
        .routes(routes!(oidc::consent))
        .routes(routes!(oidc::userinfo_get, oidc::userinfo_post))
        .routes(routes!(oidc::logout_get, oidc::logout_post))
        .routes(routes!(browser::login_page, browser::login_submit))
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
        .routes(routes!(ops::metrics))
}

/// The OpenAPI document, exactly as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

/// The router of `KEYMINT_METRICS_BIND`: `/metrics` and nothing else.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            axum::routing::get(|s: axum::extract::State<AppState>| async move {
                ops::exposition(&s.0).await
            }),
        )
        .fallback(|| async { Error::not_found("route") })
        .with_state(state)
}

/// The complete application router.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api_router().split_for_parts();
    let state_for_pages = state.clone();
    let https = state.config.is_https();
    let timeout = state.config.request_timeout;
    let cors = cors_layer(&state.config.cors_origins);
    let metrics = state.metrics.clone();
    let router = api
        .with_state(state)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
        .merge(browser_pages(state_for_pages))
        .fallback(|| async { Error::not_found("route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(move |req, next| {
            deadline(req, next, timeout)
        }));
    // CORS is closed unless origins are configured: no layer, no Access-Control-* headers.
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(middleware::from_fn(move |req, next| {
            security_headers(req, next, https)
        }))
        .layer(middleware::from_fn(move |req, next| {
            observe(req, next, metrics.clone())
        }))
}

/// Undocumented browser routes: `/` (who is signed in) and the pages' stylesheet.
fn browser_pages(state: AppState) -> Router {
    Router::new()
        .route("/", axum::routing::get(browser::home))
        .route(
            "/assets/keymint.css",
            axum::routing::get(browser::stylesheet),
        )
        .with_state(state)
}

/// Per request: an id (the caller's `x-request-id` when it is sane, else a new one) on a
/// tracing span and the response, and a latency sample keyed by the matched route template.
async fn observe(
    req: Request,
    next: Next,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
) -> Response {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = match *req.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::OPTIONS => "OPTIONS",
        axum::http::Method::HEAD => "HEAD",
        _ => "OTHER",
    };
    let span = tracing::info_span!("request", id = %id, method, route = %route);
    let mut resp = next.run(req).instrument(span.clone()).await;
    let secs = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    metrics.request(&route, method, status, secs);
    span.in_scope(|| tracing::debug!(status, ms = secs * 1000.0, "request done"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::Method;
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(list))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static("x-csrf-token"),
            ])
            // Cookie mode from a listed origin: the browser sends the cookies only when the
            // answer allows credentials (the origins are an explicit list, never `*`).
            .allow_credentials(true)
            .expose_headers([header::RETRY_AFTER, header::ETAG])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// A request (body included) must finish within the configured time, so a slow client holds
/// no task or database connection for long. Answers 408.
async fn deadline(req: Request, next: Next, timeout: std::time::Duration) -> Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            let message = format!(
                "the request did not complete within {} s",
                timeout.as_secs()
            );
            Error::new(crate::error::ErrorCode::RequestTimeout, message).into_response()
        }
    }
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
