//! Browser sign-in and OpenID Connect (SPEC section 7), free of HTTP: SSO sessions (`sso`),
//! the authorization request and its decisions (`authorize`), codes, the
//! `authorization_code` grant and ID tokens (`code`), userinfo, and RP-initiated logout
//! (`logout`). `http::browser` and `http::oidc` are the doors.

pub mod authorize;
pub mod code;
pub mod logout;
pub mod params;
pub mod sso;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorCode, Result};
use crate::state::App;
use crate::tokens::AccessClaims;

/// Scopes every client may ask for in the code flow, besides those registered for it:
/// `openid` (required) and `profile`, which the password grant allows everyone too.
pub const IMPLICIT_SCOPES: [&str; 2] = ["openid", "profile"];

/// The key of keymint's browser-facing MACs (CSRF tokens), derived from the KEK so every
/// instance on one database agrees on it.
pub struct BrowserKey(Zeroizing<[u8; 32]>);

impl BrowserKey {
    pub fn new(key: Zeroizing<[u8; 32]>) -> Self {
        BrowserKey(key)
    }

    /// HMAC-SHA-256 of `value` for `purpose`, base64url: a CSRF token bound to `value`.
    pub fn tag(&self, purpose: &str, value: &str) -> String {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.0[..]);
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
        ctx.update(purpose.as_bytes());
        ctx.update(b"\0");
        ctx.update(value.as_bytes());
        B64.encode(ctx.sign().as_ref())
    }

    /// Whether `presented` is the tag of `value` for `purpose` (constant time).
    pub fn check(&self, purpose: &str, value: &str, presented: &str) -> bool {
        let want = self.tag(purpose, value);
        want.len() == presented.len() && bool::from(want.as_bytes().ct_eq(presented.as_bytes()))
    }
}

/// Codes, SSO session secrets and form nonces are made and stored like client secrets.
pub use crate::clients::{digest, random_secret};

/// RFC 7636 `S256`: BASE64URL(SHA256(verifier)) == challenge, and a well-formed verifier.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    if !valid_pkce_value(verifier) {
        return false;
    }
    let computed = B64.encode(Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

/// 43–128 characters of `[A-Za-z0-9-._~]` (RFC 7636 section 4.1 and 4.2).
pub fn valid_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// OpenID Connect `at_hash`: the left half of SHA-256 of the access token, base64url.
pub fn at_hash(access_token: &str) -> String {
    B64.encode(&Sha256::digest(access_token.as_bytes())[..16])
}

/// The claims `/oauth/userinfo` returns for an access token's scope.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct UserInfo {
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// Where the hosted login may send the browser afterwards: a relative path on keymint, or `/`.
/// (`//host` and `/\\host` are other hosts to a browser.)
pub fn safe_return_to(v: Option<&str>) -> String {
    match v {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && p.len() <= 16 * 1024
                && !p.chars().any(|c| c.is_control() || c == '\\') =>
        {
            p.to_string()
        }
        _ => "/".into(),
    }
}

/// The scope tokens of a space-separated scope string.
pub fn scope_has(scope: &str, want: &str) -> bool {
    scope.split(' ').any(|s| s == want)
}

/// Userinfo (OpenID Connect Core section 5.3) for a verified access token: it needs the
/// `openid` scope (`FORBIDDEN`, which the door answers as `insufficient_scope`) and a user
/// that still exists and is enabled.
pub async fn userinfo(app: &App, claims: &AccessClaims) -> Result<UserInfo> {
    if !scope_has(&claims.scope, "openid") {
        return Err(Error::new(
            ErrorCode::Forbidden,
            "insufficient_scope: the access token's scope lacks openid",
        ));
    }
    let user = match app.users.by_id(&claims.sub).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(Error::invalid_token()),
    };
    let profile = scope_has(&claims.scope, "profile");
    let email = scope_has(&claims.scope, "email");
    Ok(UserInfo {
        sub: user.id,
        preferred_username: profile.then(|| user.username.clone()),
        name: if profile {
            Some(user.name.unwrap_or(user.username))
        } else {
            None
        },
        email_verified: (email && user.email.is_some()).then_some(false),
        email: if email { user.email } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(challenge, challenge));
        assert!(!pkce_matches("short", challenge));
    }

    #[test]
    fn return_to_stays_on_keymint() {
        assert_eq!(
            safe_return_to(Some("/oauth/authorize?x=1")),
            "/oauth/authorize?x=1"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "evil",
            "/\n",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_to(None), "/");
    }

    #[test]
    fn csrf_tags_are_bound_to_purpose_and_value() {
        let k = BrowserKey::new(Zeroizing::new([7u8; 32]));
        let t = k.tag("cookie", "sid-1");
        assert!(k.check("cookie", "sid-1", &t));
        assert!(!k.check("cookie", "sid-2", &t));
        assert!(!k.check("sso", "sid-1", &t));
        assert!(!k.check("cookie", "sid-1", ""));
    }
}
