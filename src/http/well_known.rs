//! Discovery: the JWKS and the OpenID / OAuth metadata documents.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::schemas::JwksDoc;
use crate::state::AppState;

/// The public halves of every next, active and retired access key. Served from bytes rendered
/// once per key change, with an ETag and `Cache-Control: public, max-age=…`.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "discovery",
    responses(
        (status = 200, description = "The JSON Web Key Set", body = JwksDoc,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified (If-None-Match matched the ETag)"),
    ))]
pub async fn jwks(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let ring = s.keys.ring();
    let (body, etag) = ring.jwks();
    let mut out = cache_headers(etag, s.config.jwks_max_age.as_secs());
    if if_none_match(&headers, etag) {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (StatusCode::OK, out, body.clone()).into_response()
}

/// `ETag` and `Cache-Control: public, max-age` of a JWKS answer (200 and 304 alike).
fn cache_headers(etag: &str, max_age: u64) -> HeaderMap {
    let mut out = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(etag) {
        out.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        out.insert(header::CACHE_CONTROL, v);
    }
    out
}

/// RFC 9110 weak comparison of If-None-Match against our ETag.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
        })
}

/// OpenID Provider / OAuth 2.0 Authorization Server metadata.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"issuer": "http://127.0.0.1:8080", "jwks_uri": "http://127.0.0.1:8080/.well-known/jwks.json", "token_endpoint": "http://127.0.0.1:8080/oauth/token", "revocation_endpoint": "http://127.0.0.1:8080/oauth/revoke", "introspection_endpoint": "http://127.0.0.1:8080/oauth/introspect", "userinfo_endpoint": "http://127.0.0.1:8080/oauth/userinfo", "authorization_endpoint": "http://127.0.0.1:8080/oauth/authorize", "end_session_endpoint": "http://127.0.0.1:8080/oauth/logout", "grant_types_supported": ["authorization_code", "password", "refresh_token", "client_credentials"], "response_types_supported": ["code"], "response_modes_supported": ["query"], "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"], "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"], "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "sid", "preferred_username", "name", "email", "email_verified"], "scopes_supported": ["openid", "profile", "email"], "prompt_values_supported": ["none", "login"], "request_uri_parameter_supported": false, "request_parameter_supported": false, "authorization_response_iss_parameter_supported": true}))]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub userinfo_endpoint: String,
    pub authorization_endpoint: String,
    pub end_session_endpoint: String,
    pub grant_types_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    pub scopes_supported: Vec<&'static str>,
    pub prompt_values_supported: Vec<&'static str>,
    /// Request objects are not supported (OpenID Connect Discovery defaults this to `true`).
    pub request_uri_parameter_supported: bool,
    pub request_parameter_supported: bool,
    /// RFC 9207: authorization responses carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
}

fn discovery(s: &AppState) -> Discovery {
    let base = &s.config.issuer;
    Discovery {
        issuer: base.clone(),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        token_endpoint: format!("{base}/oauth/token"),
        revocation_endpoint: format!("{base}/oauth/revoke"),
        introspection_endpoint: format!("{base}/oauth/introspect"),
        userinfo_endpoint: format!("{base}/oauth/userinfo"),
        authorization_endpoint: format!("{base}/oauth/authorize"),
        end_session_endpoint: format!("{base}/oauth/logout"),
        grant_types_supported: vec![
            "authorization_code",
            "password",
            "refresh_token",
            "client_credentials",
        ],
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query"],
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: vec!["RS256"],
        code_challenge_methods_supported: vec!["S256"],
        token_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        revocation_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        introspection_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
        ],
        // The ID token's and userinfo's claims (OpenID Connect Discovery 3).
        claims_supported: vec![
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "azp",
            "sid",
            "preferred_username",
            "name",
            "email",
            "email_verified",
        ],
        scopes_supported: vec!["openid", "profile", "email"],
        prompt_values_supported: vec!["none", "login"],
        request_uri_parameter_supported: false,
        request_parameter_supported: false,
        authorization_response_iss_parameter_supported: true,
    }
}

/// OpenID Connect discovery document.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "discovery",
    responses((status = 200, description = "Provider metadata", body = Discovery)))]
pub async fn openid_configuration(State(s): State<AppState>) -> Json<Discovery> {
    Json(discovery(&s))
}

/// RFC 8414 authorization server metadata (the same document).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses((status = 200, description = "Authorization server metadata", body = Discovery)))]
pub async fn oauth_authorization_server(State(s): State<AppState>) -> Json<Discovery> {
    Json(discovery(&s))
}
