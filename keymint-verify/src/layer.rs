//! Putting verified claims into axum requests: a tower [`VerifyLayer`] for whole routers and
//! the [`Verified`] extractor for single handlers. Refusals follow RFC 6750 section 3.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};

use crate::{Claims, Verifier, VerifyError};

/// A tower layer that verifies the bearer token of every request, puts the [`Claims`] into
/// the request's extensions (read them with `axum::Extension<Claims>` or [`Verified`]) and
/// answers refusals itself.
///
/// ```no_run
/// # async fn run(verifier: keymint_verify::Verifier) {
/// use axum::{Extension, Router, routing::get};
/// use keymint_verify::{Claims, VerifyLayer};
///
/// let app: Router = Router::new()
///     .route("/hello", get(|Extension(c): Extension<Claims>| async move { c.sub }))
///     .layer(VerifyLayer::new(verifier));
/// # }
/// ```
#[derive(Clone)]
pub struct VerifyLayer {
    verifier: Verifier,
}

impl VerifyLayer {
    /// A layer verifying with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        VerifyLayer { verifier }
    }
}

impl<S> tower::Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> VerifyService<S> {
        VerifyService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service of [`VerifyLayer`].
#[derive(Clone)]
pub struct VerifyService<S> {
    inner: S,
    verifier: Verifier,
}

impl<S> tower::Service<Request<Body>> for VerifyService<S>
where
    S: tower::Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        // The clone that was polled ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            let Some(token) = bearer(req.headers()).map(str::to_owned) else {
                return Ok(Rejection::missing().into_response());
            };
            match verifier.verify(&token).await {
                Ok(claims) => {
                    req.extensions_mut().insert(claims);
                    inner.call(req).await
                }
                Err(e) => Ok(Rejection::from(e).into_response()),
            }
        })
    }
}

/// An extractor of verified claims: those a [`VerifyLayer`] put into the request, or else
/// the bearer token verified here by the [`Verifier`] in the router's state.
///
/// ```no_run
/// # async fn run(verifier: keymint_verify::Verifier) {
/// use axum::{Router, routing::get};
/// use keymint_verify::Verified;
///
/// let app: Router = Router::new()
///     .route("/hello", get(|Verified(c): Verified| async move { c.sub }))
///     .with_state(verifier);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Verified(pub Claims);

impl<S> FromRequestParts<S> for Verified
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        if let Some(c) = parts.extensions.get::<Claims>() {
            return Ok(Verified(c.clone()));
        }
        let token = bearer(&parts.headers).ok_or_else(Rejection::missing)?;
        Verifier::from_ref(state)
            .verify(token)
            .await
            .map(Verified)
            .map_err(Rejection::from)
    }
}

/// A refusal as RFC 6750 section 3 words it: 401 with `WWW-Authenticate: Bearer` (carrying
/// `error="invalid_token"` when a token was sent), or 403 `insufficient_scope`.
#[derive(Debug)]
pub struct Rejection {
    error: Option<VerifyError>,
}

impl Rejection {
    fn missing() -> Rejection {
        Rejection { error: None }
    }

    /// Why, if a token was sent.
    pub fn error(&self) -> Option<&VerifyError> {
        self.error.as_ref()
    }
}

impl From<VerifyError> for Rejection {
    fn from(e: VerifyError) -> Self {
        Rejection { error: Some(e) }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, challenge, error, description) = match &self.error {
            None => (
                StatusCode::UNAUTHORIZED,
                "Bearer".to_owned(),
                "missing_token",
                "a bearer token is required".to_owned(),
            ),
            Some(VerifyError::InsufficientScope(s)) => (
                StatusCode::FORBIDDEN,
                format!(
                    "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                    quoted(s)
                ),
                "insufficient_scope",
                format!("the token lacks scope {s:?}"),
            ),
            Some(e) => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    quoted(&e.to_string())
                ),
                "invalid_token",
                e.to_string(),
            ),
        };
        let body = serde_json::json!({"error": error, "error_description": description});
        let mut resp = (status, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

/// Characters allowed inside an RFC 6750 quoted attribute value.
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(c, ' ' | '!' | '#'..='[' | ']'..='~'))
        .collect()
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
