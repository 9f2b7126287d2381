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
    use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
    use tower_http::set_header::SetResponseHeaderLayer;
    let (api, doc) = api_router().split_for_parts();
    let state_for_pages = state.clone();
    let https = state.config.is_https();
    let timeout = state.config.request_timeout;
    let cors = cors_layer(&state.config.cors_origins);
    let metrics = state.metrics.clone();
    let docs = Router::from(SwaggerUi::new("/docs").url("/openapi.json", doc)).layer(
        SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        ),
    );
    let router = api
        .with_state(state)
        .merge(docs)
        .merge(browser_pages(state_for_pages))
        .fallback(|| async { Error::not_found("route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    // CORS is closed unless origins are configured: no layer, no Access-Control-* headers.
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    // Outside CORS, which answers preflights itself; inside the header layers, so its 408
    // carries them.
    let router = router.layer(middleware::from_fn(move |req, next| {
        observe(req, next, metrics.clone(), timeout)
    }));
    let router = if https {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ))
    } else {
        router
    };
    let request_id = header::HeaderName::from_static("x-request-id");
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, RequestIds::default()))
        .layer(tower::util::MapRequestLayer::new(drop_odd_request_id))
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

/// Request ids: the caller's `x-request-id` when it is sane (see `drop_odd_request_id`),
/// else a new one: a random per-process prefix and a counter, 32 hex digits like a UUID, unique
/// across instances without a system call per request.
#[derive(Clone)]
struct RequestIds {
    prefix: u64,
    next: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        Self {
            prefix: rand::random(),
            next: Default::default(),
        }
    }
}

impl tower_http::request_id::MakeRequestId for RequestIds {
    fn make_request_id<B>(
        &mut self,
        _: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{:016x}{n:016x}", self.prefix);
        HeaderValue::from_str(&id)
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}

/// A caller's request id goes into logs and back out: keep it only when it is 1-64 characters
/// of `[A-Za-z0-9._-]`, else drop it so a new one is made.
fn drop_odd_request_id(mut req: Request) -> Request {
    let odd = req.headers().get("x-request-id").is_some_and(|v| {
        let b = v.as_bytes();
        b.is_empty()
            || b.len() > 64
            || !b
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
    });
    if odd {
        req.headers_mut().remove("x-request-id");
    }
    req
}

/// Per request: a tracing span with the request id, a latency sample keyed by the matched
/// route template, and the deadline: a request (body included) must finish within the
/// configured time, so a slow client holds no task or database connection for long (408).
async fn observe(
    req: Request,
    next: Next,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    timeout: std::time::Duration,
) -> Response {
    use axum::response::IntoResponse;
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str())
        .unwrap_or("unmatched");
    let route = metrics.route(route);
    let method = method_label(req.method());
    let span = tracing::info_span!("request", id = tracing::field::Empty, method, route = %route);
    if !span.is_disabled()
        && let Some(id) = req.headers().get("x-request-id")
    {
        span.record("id", String::from_utf8_lossy(id.as_bytes()).as_ref());
    }
    let resp = match tokio::time::timeout(timeout, next.run(req))
        .instrument(span.clone())
        .await
    {
        Ok(resp) => resp,
        Err(_) => {
            let message = format!(
                "the request did not complete within {} s",
                timeout.as_secs()
            );
            Error::new(crate::error::ErrorCode::RequestTimeout, message).into_response()
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    metrics.request(route, method, status, secs);
    span.in_scope(|| tracing::debug!(status, ms = secs * 1000.0, "request done"));
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

const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The label of a request method (a fixed set: no caller-chosen strings in labels).
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        _ => "OTHER",
    }
}
