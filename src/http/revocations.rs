//! `GET /oauth/revocations`: the revocation feed relying parties follow to refuse revoked
//! tokens within a second (SPEC section 8). RFC 6749 errors, like every `/oauth/*` endpoint.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::auth::no_store;
use crate::http::oauth_form::{basic_credentials, invalid_client};
use crate::oauth::OAuthError;
use crate::revocation::feed::{self, Cursor};
use crate::state::AppState;

/// Default and largest page sizes.
const DEFAULT_LIMIT: u64 = 1_000;
const MAX_LIMIT: u64 = 10_000;

/// Query of the feed.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The `cursor` of the previous page; absent, the feed starts at the oldest live entry.
    pub after: Option<String>,
    /// Entries per page, 1 to 10,000 (default 1,000). A shorter page means caught up.
    pub limit: Option<u64>,
}

/// One revocation.
#[derive(Serialize, ToSchema)]
pub struct FeedEntry {
    /// `jti` (one access token), `sid` (every access token of a refresh family) or `client`
    /// (every token issued to a deleted OAuth client, by `client_id`).
    #[schema(example = "jti")]
    pub kind: &'static str,
    #[schema(example = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")]
    pub value: String,
    /// Unix seconds after which no token it covers is valid any more.
    #[schema(example = 1795435379)]
    pub expires_at: i64,
}

/// A page of the feed.
#[derive(Serialize, ToSchema)]
pub struct RevocationFeed {
    pub revocations: Vec<FeedEntry>,
    /// Pass as `after` to read on; opaque.
    pub cursor: String,
}

/// Follow revocations (keymint extension, SPEC section 8). Every revocation appears at least
/// once from the first page on, until the last token it covers has expired; following the
/// cursor never skips one. The caller authenticates as a client with HTTP Basic.
#[utoipa::path(get, path = "/oauth/revocations", tag = "oauth",
    params(FeedQuery),
    security(("client_basic" = [])),
    responses(
        (status = 200, description = "A page of revocations and the cursor after it", body = RevocationFeed,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "invalid_request: a cursor keymint did not issue, or a limit out of range", body = crate::http::oauth::OAuthErrorBody),
        (status = 401, description = "invalid_client: no or bad client credentials", body = crate::http::oauth::OAuthErrorBody),
        (status = 503, description = "temporarily_unavailable: the database is unreachable", body = crate::http::oauth::OAuthErrorBody),
    ))]
pub async fn revocations(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, OAuthError> {
    let (id, secret) = basic_credentials(&headers)?.ok_or_else(invalid_client)?;
    s.clients
        .authenticate(&id, &secret)
        .await?
        .ok_or_else(invalid_client)?;
    let q: FeedQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| OAuthError::new("invalid_request", format!("bad query: {e}")))?;
    let after = match q.after.as_deref() {
        None => Cursor::start(),
        Some(c) => {
            Cursor::decode(c).ok_or_else(|| OAuthError::new("invalid_request", "unknown cursor"))?
        }
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(OAuthError::new(
            "invalid_request",
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    let page = feed::read(&s.db, &after, limit, s.now()).await?;
    let body = RevocationFeed {
        revocations: page
            .entries
            .into_iter()
            .map(|e| FeedEntry {
                kind: e.kind.feed_name(),
                value: e.value,
                expires_at: e.expires_at,
            })
            .collect(),
        cursor: page.next.encode(),
    };
    Ok(no_store(Json(body).into_response()))
}
