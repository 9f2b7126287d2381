//! The OpenAPI document's frame: info, tags and security schemes. Paths come from the
//! `#[utoipa::path]` annotations via `http::api_router`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "keymint", description = "An RS256 identity provider: rotating RSA keys published as a JWKS, access/refresh token pairs."),
    modifiers(&Security),
    components(schemas(
        crate::http::error::ErrorBody,
        crate::http::error::ErrorCodeDoc,
        crate::http::auth::Mode
    )),
    tags(
        (name = "discovery", description = "JWKS and provider metadata"),
        (name = "auth", description = "Log in, refresh, log out, who am I"),
        (name = "oauth", description = "OAuth 2.0 token, revocation and introspection endpoints (form bodies, RFC 6749 errors)"),
        (name = "openid connect", description = "OpenID Connect: authorization (code flow with PKCE), consent, userinfo, RP-initiated logout"),
        (name = "browser", description = "The hosted sign-in page (HTML)"),
        (name = "admin keys", description = "Signing keys: list, rotate, revoke (admin role)"),
        (name = "admin users", description = "Users and their sessions (admin role)"),
        (name = "admin clients", description = "OAuth clients (admin role)"),
        (name = "audit", description = "The audit trail (admin role)"),
        (name = "operations", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        // OAuth client authentication (RFC 6749 section 2.3.1); `client_secret_post` is the
        // same credentials as form fields.
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}
