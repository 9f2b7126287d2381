//! OAuth 2.0 semantics over sessions and clients: the three grants (RFC 6749), token
//! revocation (RFC 7009) and introspection (RFC 7662). No HTTP here: `http::oauth` parses the
//! form bodies and renders [`OAuthError`] in the RFC 6749 shape.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::{self, Event};
use crate::clients::Client;
use crate::db::entities::{refresh_families as fam, refresh_tokens as rt};
use crate::error::{Error, ErrorCode};
use crate::keys::Purpose;
use crate::revocation::Kind;
use crate::sessions::TokenPair;
use crate::state::App;
use crate::tokens::{AccessClaims, AccessFor};
use sea_orm::EntityTrait;

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
    let access_token =
        tokio::task::spawn_blocking(move || tokens.sign(&ring, Purpose::Access, &claims))
            .await
            .map_err(Error::internal)?
            .map_err(|e| Error::new(ErrorCode::ServiceUnavailable, format!("cannot sign: {e}")))?;
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

/// RFC 7662 introspection response.
#[derive(Debug, Default, Serialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"active": true, "sub": "c_5f2b8e0c", "exp": 1795435379, "iat": 1795434479, "jti": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "scope": "billing:read", "client_id": "c_5f2b8e0c", "token_type": "access_token", "iss": "http://127.0.0.1:8080", "aud": "https://billing.example"}))]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `access_token` or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// What a token turned out to be, when it verifies.
// Lives for one request on the stack; boxing would only add allocations.
#[allow(clippy::large_enum_variant)]
enum Known {
    Access(AccessClaims),
    Refresh {
        claims: crate::tokens::RefreshClaims,
        row: rt::Model,
        family: fam::Model,
    },
}

async fn identify(
    app: &App,
    token: &str,
    hint: Option<&str>,
    now: i64,
) -> Result<Option<Known>, Error> {
    let ring = app.keys.ring();
    let as_access = || {
        app.tokens
            .verify_access(&ring, token, None, now)
            .ok()
            .map(Known::Access)
    };
    if hint != Some("refresh_token")
        && let Some(k) = as_access()
    {
        return Ok(Some(k));
    }
    if let Ok(claims) = app.tokens.verify_refresh(&ring, token, now) {
        let row = rt::Entity::find_by_id(claims.jti.clone())
            .one(&app.db)
            .await?;
        let family = match &row {
            Some(r) => {
                fam::Entity::find_by_id(r.family_id.clone())
                    .one(&app.db)
                    .await?
            }
            None => None,
        };
        if let (Some(row), Some(family)) = (row, family) {
            return Ok(Some(Known::Refresh {
                claims,
                row,
                family,
            }));
        }
        return Ok(None);
    }
    Ok(if hint == Some("refresh_token") {
        as_access()
    } else {
        None
    })
}

/// RFC 7662: whether `token` is active now, and its claims if so.
///
/// `caller` is the authenticated client (`None`: an admin): a client sees only tokens issued
/// to it or whose `aud` is its registered audience; any other token is `{"active": false}`,
/// so introspection tells a client nothing about other clients' tokens.
pub async fn introspect(
    app: &App,
    token: &str,
    hint: Option<&str>,
    caller: Option<&Client>,
    now: i64,
) -> Result<Introspection, Error> {
    let found = introspect_any(app, token, hint, now).await?;
    let visible = match caller {
        None => true,
        Some(c) => {
            found.client_id.as_deref() == Some(c.client_id.as_str())
                || (c.audience.is_some() && found.aud == c.audience)
        }
    };
    Ok(if visible {
        found
    } else {
        Introspection::default()
    })
}

async fn introspect_any(
    app: &App,
    token: &str,
    hint: Option<&str>,
    now: i64,
) -> Result<Introspection, Error> {
    Ok(match identify(app, token, hint, now).await? {
        Some(Known::Access(c))
            if !app
                .denylist
                .is_revoked(&c.jti, c.sid.as_deref(), c.client_id.as_deref()) =>
        {
            Introspection {
                active: true,
                sub: Some(c.sub),
                exp: Some(c.exp),
                iat: Some(c.iat),
                jti: Some(c.jti),
                scope: Some(c.scope),
                client_id: c.client_id,
                token_type: Some("access_token".into()),
                iss: Some(c.iss),
                aud: Some(c.aud),
            }
        }
        Some(Known::Refresh {
            claims,
            row,
            family,
        }) if row.used_at.is_none() && row.revoked_at.is_none() && family.revoked_at.is_none() => {
            Introspection {
                active: true,
                sub: Some(claims.sub),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                jti: Some(claims.jti),
                scope: Some(family.scope),
                client_id: family.client_id,
                token_type: Some("refresh_token".into()),
                iss: Some(claims.iss),
                aud: Some(claims.aud),
            }
        }
        _ => Introspection::default(),
    })
}

/// RFC 7009: revoke `token` if it is one of ours. Unknown or invalid tokens are not an error.
/// A token issued to a client may be revoked only by that client, authenticated; a
/// first-party token by anyone holding it.
pub async fn revoke(
    app: &App,
    token: &str,
    hint: Option<&str>,
    caller: Option<&Client>,
    now: i64,
) -> Result<(), OAuthError> {
    let known = identify(app, token, hint, now).await?;
    let owner = match &known {
        Some(Known::Access(c)) => c.client_id.clone(),
        Some(Known::Refresh { family, .. }) => family.client_id.clone(),
        None => return Ok(()),
    };
    match (caller, owner.as_deref()) {
        // Every registered client is confidential: only it may end its grants (SPEC
        // section 4), so a leaked token cannot be used to log its client's users out.
        (None, Some(_)) => {
            return Err(OAuthError::new(
                "invalid_client",
                "the token was issued to a confidential client: authenticate as that client",
            ));
        }
        (Some(caller), Some(owner)) if caller.client_id != owner => {
            return Err(OAuthError::new(
                "unauthorized_client",
                "the token was issued to another client",
            ));
        }
        _ => {}
    }
    let (subject, detail) = match known {
        Some(Known::Access(c)) => {
            app.denylist
                .revoke(
                    Kind::Jti,
                    &c.jti,
                    c.exp + app.tokens.leeway,
                    "oauth revoke",
                    now,
                )
                .await?;
            (c.sub.clone(), json!({"jti": c.jti, "type": "access_token"}))
        }
        Some(Known::Refresh { claims, family, .. }) => {
            // Revoking a refresh token ends its grant: the family and its access tokens.
            app.sessions
                .revoke_family(&family.id, "oauth revoke", now)
                .await?;
            (
                claims.sub.clone(),
                json!({"family": family.id, "type": "refresh_token"}),
            )
        }
        None => return Ok(()),
    };
    audit::record(
        &app.db,
        Event::new("token.revoke", "ok")
            .actor(caller.map(|c| c.client_id.as_str()))
            .subject(Some(&subject))
            .detail(detail),
        now,
    )
    .await;
    Ok(())
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
