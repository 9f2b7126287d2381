//! Fuzz the request decoders: OAuth form bodies, HTTP Basic client credentials, and the JSON
//! request bodies of the API.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use keymint::http::oauth_form::{basic_credentials, parse_form};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
    let _ = parse_form(&headers, data);
    if let Ok(v) = HeaderValue::from_bytes(data) {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, v);
        let _ = basic_credentials(&h);
    }
    let _ = serde_json::from_slice::<keymint::http::auth::LoginRequest>(data);
    let _ = serde_json::from_slice::<keymint::http::auth::LogoutRequest>(data);
    let _ = serde_json::from_slice::<keymint::http::admin_users::UpdateUser>(data);
    let _ = serde_json::from_slice::<keymint::clients::NewClient>(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = keymint::config::parse_duration(s);
    }
});
