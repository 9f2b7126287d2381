//! Browser cookies (SPEC section 7): their names (`__Host-`/`__Secure-` prefixed and `Secure`
//! with an https issuer), `Set-Cookie` values, reading the `Cookie` header, and the CSRF rule
//! for cookie-authenticated state-changing requests.

use axum::http::{HeaderMap, HeaderValue, Method, header};

use crate::error::{Error, ErrorCode, Result};
use crate::state::App;

/// Which cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cookie {
    /// The access token (cookie mode).
    Access,
    /// The refresh token (cookie mode), sent only to `/auth`.
    Refresh,
    /// The CSRF token (cookie mode), readable by the page's JavaScript.
    Csrf,
    /// The browser session of the hosted login page.
    Sso,
    /// The hosted login form's CSRF nonce.
    LoginForm,
}

impl Cookie {
    /// The cookie's name: with an https issuer, prefixed so that a sibling subdomain or a
    /// plain-http page cannot plant it.
    pub fn name(self, https: bool) -> &'static str {
        match (self, https) {
            (Cookie::Access, false) => "km_access",
            (Cookie::Access, true) => "__Host-km_access",
            (Cookie::Refresh, false) => "km_refresh",
            (Cookie::Refresh, true) => "__Secure-km_refresh",
            (Cookie::Csrf, false) => "km_csrf",
            (Cookie::Csrf, true) => "__Host-km_csrf",
            (Cookie::Sso, false) => "km_sso",
            (Cookie::Sso, true) => "__Host-km_sso",
            (Cookie::LoginForm, false) => "km_login",
            (Cookie::LoginForm, true) => "__Host-km_login",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Cookie::Refresh => "/auth",
            _ => "/",
        }
    }

    fn http_only(self) -> bool {
        self != Cookie::Csrf
    }

    fn same_site(self) -> &'static str {
        match self {
            // Lax: the SSO session must come along when a relying party sends the browser to
            // /oauth/authorize (a top-level cross-site GET).
            Cookie::Sso => "Lax",
            _ => "Strict",
        }
    }

    /// `Set-Cookie` for `value`, living `max_age` seconds (0 deletes it).
    pub fn set(self, https: bool, value: &str, max_age: i64) -> HeaderValue {
        let mut v = format!(
            "{}={value}; Path={}; Max-Age={}; SameSite={}",
            self.name(https),
            self.path(),
            max_age.max(0),
            self.same_site()
        );
        if self.http_only() {
            v.push_str("; HttpOnly");
        }
        if https {
            v.push_str("; Secure");
        }
        // Our values are base64url or JWTs: always a valid header value.
        HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// `Set-Cookie` that deletes it.
    pub fn clear(self, https: bool) -> HeaderValue {
        self.set(https, "", 0)
    }

    /// This cookie's value in the request, if sent (the first one, when repeated).
    pub fn read(self, headers: &HeaderMap, https: bool) -> Option<String> {
        let name = self.name(https);
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim_matches('"').to_string())
            .filter(|v| !v.is_empty() && v.len() <= 8192)
    }
}

/// The CSRF token of a cookie-mode session: an HMAC of its `sid`, so a planted value fails.
pub fn csrf_token(app: &App, sid: &str) -> String {
    app.browser.tag("cookie", sid)
}

/// Whether the request's method changes state (and so needs the CSRF check under a cookie).
pub fn state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The origin (`scheme://host[:port]`) of a URL.
pub fn origin_of(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

/// An `Origin` header, when present, must be the issuer's or one of `KEYMINT_CORS_ORIGINS`.
pub fn origin_allowed(app: &App, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    origin_of(&app.config.issuer).as_deref() == Some(origin)
        || app.config.cors_origins.iter().any(|o| o == origin)
}

/// `origin_allowed` for keymint's own HTML forms. Under `Referrer-Policy: no-referrer` (sent
/// on every response) browsers post forms with `Origin: null`, which therefore counts as
/// absent here; the forms' own tokens (the `km_login` nonce's HMAC, the session-bound `csrf`)
/// are what protect them.
pub fn form_origin_allowed(app: &App, headers: &HeaderMap) -> bool {
    let null = headers
        .get(header::ORIGIN)
        .is_some_and(|v| v.as_bytes() == b"null");
    null || origin_allowed(app, headers)
}

/// The CSRF rule of a cookie-authenticated state-changing request: `X-CSRF-Token` equal to
/// the session's token, and an allowed `Origin`; otherwise `CSRF_FAILED`.
pub fn check_csrf(app: &App, headers: &HeaderMap, sid: Option<&str>) -> Result<()> {
    let presented = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token_ok = sid.is_some_and(|sid| app.browser.check("cookie", sid, presented));
    if !token_ok {
        return Err(Error::new(
            ErrorCode::CsrfFailed,
            "a cookie-authenticated request must send X-CSRF-Token equal to the km_csrf cookie",
        ));
    }
    if !origin_allowed(app, headers) {
        return Err(Error::new(
            ErrorCode::CsrfFailed,
            "the request's Origin is not allowed",
        ));
    }
    Ok(())
}
