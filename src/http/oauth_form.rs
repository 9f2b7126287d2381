//! `/oauth/*` requests: the form body (RFC 6749 section 3.2 rules) and client authentication
//! (HTTP Basic or `client_secret_post`, RFC 6749 section 2.3.1), as the `ClientForm` extractor.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::clients::Client;
use crate::error::ErrorCode;
use crate::oauth::OAuthError;
use crate::state::AppState;

/// Parse an `application/x-www-form-urlencoded` body. Empty values count as absent and a
/// repeated parameter is an error (RFC 6749 section 3.2).
pub fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::new(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| OAuthError::new("invalid_request", "malformed form body"))?;
    let mut map = HashMap::new();
    for (k, v) in pairs {
        if v.is_empty() {
            continue;
        }
        if map.insert(k.clone(), v).is_some() {
            return Err(OAuthError::new(
                "invalid_request",
                format!("parameter {k:?} is repeated"),
            ));
        }
    }
    Ok(map)
}

pub(super) fn invalid_client() -> OAuthError {
    OAuthError::new("invalid_client", "client authentication failed")
}

/// `Authorization: Basic` credentials, form-urlencoded per RFC 6749 section 2.3.1.
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(v) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some((scheme, b64)) = v.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| invalid_client())?;
    let text = String::from_utf8(raw).map_err(|_| invalid_client())?;
    let (id, secret) = text.split_once(':').ok_or_else(invalid_client)?;
    let decode = |s: &str| -> Result<String, OAuthError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(&format!("v={s}")).map_err(|_| invalid_client())?;
        Ok(pairs.into_iter().next().map(|p| p.1).unwrap_or_default())
    };
    Ok(Some((decode(id)?, decode(secret)?)))
}

/// The authenticated client, if the request authenticates one. Credentials that are present
/// but wrong are always an error, even where authentication is optional.
async fn client_auth(
    s: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Option<Client>, OAuthError> {
    let basic = basic_credentials(headers)?;
    let (id, secret) = match basic {
        Some((id, secret)) => {
            if form.contains_key("client_secret") || form.get("client_id").is_some_and(|f| *f != id)
            {
                return Err(OAuthError::new(
                    "invalid_request",
                    "use one client authentication method",
                ));
            }
            (id, Some(secret))
        }
        None => match form.get("client_id") {
            Some(id) => (id.clone(), form.get("client_secret").cloned()),
            None => return Ok(None),
        },
    };
    // A client_id alone identifies a public client (authentication method `none`); for a
    // confidential one it is a failed authentication.
    let Some(secret) = secret else {
        return s
            .clients
            .public(&id)
            .await
            .map_err(OAuthError::from)?
            .map(Some)
            .ok_or_else(invalid_client);
    };
    s.clients
        .authenticate(&id, &secret)
        .await
        .map_err(OAuthError::from)?
        .map(Some)
        .ok_or_else(invalid_client)
}

/// A form body of `/oauth/*` with the client it authenticates, if any (RFC 6749 errors).
pub struct ClientForm {
    pub form: HashMap<String, String>,
    pub client: Option<Client>,
    pub(super) headers: HeaderMap,
}

impl ClientForm {
    pub(super) fn field(&self, name: &str) -> Option<&str> {
        self.form.get(name).map(String::as_str)
    }
}

impl axum::extract::FromRequest<AppState> for ClientForm {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, s: &AppState) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, s).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                // As documented: the API-wide 413 body, not an RFC 6749 one.
                crate::error::Error::new(ErrorCode::PayloadTooLarge, "request body exceeds 64 KiB")
                    .into_response()
            } else {
                OAuthError::new("invalid_request", "the body could not be read").into_response()
            }
        })?;
        let form = parse_form(&headers, &body).map_err(IntoResponse::into_response)?;
        let client = client_auth(s, &headers, &form)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(ClientForm {
            form,
            client,
            headers,
        })
    }
}

pub(super) fn required<'a>(
    form: &'a HashMap<String, String>,
    name: &str,
) -> Result<&'a str, OAuthError> {
    form.get(name)
        .map(String::as_str)
        .ok_or_else(|| OAuthError::new("invalid_request", format!("missing parameter {name:?}")))
}
