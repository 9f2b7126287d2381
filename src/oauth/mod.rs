//! OAuth 2.0 semantics over sessions and clients: the grants (RFC 6749; the code grant is
//! in `oidc::code`), token
//! revocation (RFC 7009) and introspection (RFC 7662). No HTTP here: `http::oauth` parses the
//! form bodies and renders [`OAuthError`] in the RFC 6749 shape.
//!
//! This file holds the token endpoint and its grants; `token_info` introspection and revocation.

mod token_info;

pub use token_info::{Introspection, introspect, revoke};

use sea_orm::EntityTrait;

use crate::clients::Client;
use crate::db::entities::refresh_families as fam;
use crate::error::Error;
use crate::keys::Purpose;
use crate::sessions::TokenPair;
use crate::state::App;
use crate::tokens::AccessFor;

/// Why an OAuth operation failed: an RFC 6749 protocol error (its registered code and a
/// description), or a domain error, which `http::oauth::rfc6749` maps to one.
#[derive(Debug)]
pub enum OAuthError {
    Protocol {
        error: &'static str,
        description: String,
    },
    Domain(Error),
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError::Protocol {
            error,
            description: description.into(),
        }
    }
}

impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        OAuthError::Domain(e)
    }
}

/// The scope to grant: the requested scope (every token must be in `allowed`) or `default`.
pub fn grant_scope(
    requested: Option<&str>,
    allowed: &[String],
    default: &[String],
) -> Result<String, OAuthError> {
    let Some(req) = requested else {
        return Ok(default.join(" "));
    };
    let mut out: Vec<&str> = Vec::new();
    for tok in req.split(' ').filter(|t| !t.is_empty()) {
        if !allowed.iter().any(|a| a == tok) {
            return Err(OAuthError::new(
                "invalid_scope",
                format!("scope {tok:?} is not allowed"),
            ));
        }
        if !out.contains(&tok) {
            out.push(tok);
        }
    }
    Ok(out.join(" "))
}

/// Scopes a password login may request: `profile`, plus what its client allows.
pub fn user_scopes(client: Option<&Client>) -> Vec<String> {
    let mut v = vec!["profile".to_string()];
    if let Some(c) = client {
        v.extend(c.scopes.iter().filter(|s| *s != "profile").cloned());
    }
    v
}

fn require_grant(client: Option<&Client>, grant: &str) -> Result<(), OAuthError> {
    match client {
        Some(c) if !c.allows(grant) => Err(OAuthError::new(
            "unauthorized_client",
            format!("this client may not use the {grant} grant"),
        )),
        _ => Ok(()),
    }
}

/// `grant_type=password`.
pub async fn password_grant(
    app: &App,
    client: Option<&Client>,
    username: &str,
    password: &str,
    scope: Option<&str>,
    addr: Option<&str>,
) -> Result<TokenPair, OAuthError> {
    require_grant(client, "password")?;
    let scope = grant_scope(scope, &user_scopes(client), &["profile".to_string()])?;
    let req = crate::login::SignIn {
        username,
        password,
        addr,
        client,
        scope,
    };
    Ok(crate::login::sign_in(app, req).await?)
}

/// `grant_type=refresh_token`.
pub async fn refresh_grant(
    app: &App,
    client: Option<&Client>,
    token: &str,
    scope: Option<&str>,
    now: i64,
) -> Result<TokenPair, OAuthError> {
    require_grant(client, "refresh_token")?;
    let caller = client.map(|c| c.client_id.as_str());
    // A requested scope must lie within the family's (RFC 6749 section 6).
    let narrowed = match scope {
        None => None,
        Some(req) => {
            let claims = app
                .tokens
                .verify_refresh(&app.keys.ring(), token, now)
                .map_err(|_| OAuthError::new("invalid_grant", "the refresh token is not valid"))?;
            let family = fam::Entity::find_by_id(claims.fam)
                .one(&app.db)
                .await
                .map_err(Error::from)?
                .ok_or_else(|| {
                    OAuthError::new("invalid_grant", "the refresh token is not valid")
                })?;
            let allowed: Vec<String> = family
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            Some(grant_scope(Some(req), &allowed, &allowed)?)
        }
    };
    Ok(app
        .sessions
        .refresh(token, caller, narrowed.as_deref(), now)
        .await?)
}

/// An access token for a client acting on its own behalf.
pub struct ClientToken {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
}

/// `grant_type=client_credentials`: no refresh token (RFC 6749 section 4.4.3), no `sid`.
pub async fn client_credentials_grant(
    app: &App,
    client: &Client,
    scope: Option<&str>,
    now: i64,
) -> Result<ClientToken, OAuthError> {
    require_grant(Some(client), "client_credentials")?;
    let scope = grant_scope(scope, &client.scopes, &client.scopes)?;
    let t = &app.tokens;
    let claims = t.access_claims(
        AccessFor {
            sub: client.client_id.clone(),
            aud: client
                .audience
                .clone()
                .unwrap_or_else(|| app.config.audience.clone()),
            scope: scope.clone(),
            roles: vec![],
            sid: None,
            client_id: Some(client.client_id.clone()),
        },
        now,
    );
    let (ring, tokens) = (app.keys.ring(), app.tokens.clone());
    let access_token = app
        .signing
        .sign(move || tokens.sign(&ring, Purpose::Access, &claims))
        .await?;
    app.metrics.issued(crate::metrics::Issued::Access);
    Ok(ClientToken {
        access_token,
        expires_in: t.access_ttl,
        scope,
    })
}

/// What the token endpoint issued. Lives for one response; boxing would only add allocations.
#[allow(clippy::large_enum_variant)]
pub enum Issued {
    /// An access and refresh token pair (password and refresh_token grants).
    Pair(TokenPair),
    /// An access token alone (client_credentials).
    Client(ClientToken),
    /// The code grant: a pair (the refresh token only for clients allowed to refresh) and
    /// an ID token.
    Code(crate::oidc::code::CodeTokens),
}

/// The RFC 6749 token endpoint: dispatch on `grant_type` over the parsed form fields.
/// `client` is the authenticated client, if the request authenticated one.
pub async fn token(
    app: &App,
    client: Option<Client>,
    form: &std::collections::HashMap<String, String>,
    addr: Option<&str>,
) -> Result<Issued, OAuthError> {
    let field = |name: &str| {
        form.get(name).map(String::as_str).ok_or_else(|| {
            OAuthError::new("invalid_request", format!("missing parameter {name:?}"))
        })
    };
    let scope = form.get("scope").map(String::as_str);
    let client = client.as_ref();
    match field("grant_type")? {
        "password" => {
            let (user, pw) = (field("username")?, field("password")?);
            let pair = password_grant(app, client, user, pw, scope, addr).await?;
            Ok(Issued::Pair(pair))
        }
        "refresh_token" => {
            let token = field("refresh_token")?;
            let pair = refresh_grant(app, client, token, scope, app.now()).await?;
            Ok(Issued::Pair(pair))
        }
        "authorization_code" => {
            let t = crate::oidc::code::grant(app, client, form, app.now()).await?;
            Ok(Issued::Code(t))
        }
        "client_credentials" => {
            let c = client
                .ok_or_else(|| OAuthError::new("invalid_client", "client authentication failed"))?;
            let t = client_credentials_grant(app, c, scope, app.now()).await?;
            Ok(Issued::Client(t))
        }
        other => Err(OAuthError::new(
            "unsupported_grant_type",
            format!("grant_type {other:?} is not supported"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scope_requests_are_checked_against_what_is_allowed() {
        let allowed = v(&["read", "write", "profile"]);
        let default = v(&["read"]);
        assert_eq!(grant_scope(None, &allowed, &default).unwrap(), "read");
        assert_eq!(
            grant_scope(Some("write  read write"), &allowed, &default).unwrap(),
            "write read",
            "duplicates and extra spaces collapse, order kept"
        );
        let refused = grant_scope(Some("read admin"), &allowed, &default).unwrap_err();
        assert!(matches!(
            refused,
            OAuthError::Protocol {
                error: "invalid_scope",
                ..
            }
        ));
        assert_eq!(grant_scope(Some(""), &allowed, &default).unwrap(), "");
    }

    #[test]
    fn password_logins_may_ask_for_profile_plus_the_clients_scopes() {
        assert_eq!(user_scopes(None), v(&["profile"]));
    }
}
