//! RFC 7662 introspection and RFC 7009 revocation, scoped to the calling client.

use serde::Serialize;
use serde_json::json;

use super::OAuthError;
use crate::audit::{self, Event};
use crate::clients::Client;
use crate::db::entities::{refresh_families as fam, refresh_tokens as rt};
use crate::error::Error;
use crate::revocation::Kind;
use crate::state::App;
use crate::tokens::AccessClaims;
use sea_orm::EntityTrait;

/// RFC 7662 introspection response.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
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
        // Only its client may end a client's grants (SPEC section 4), so a leaked token
        // cannot be used to log its client's users out; a public client identifies itself
        // with its client_id.
        (None, Some(_)) => {
            return Err(OAuthError::new(
                "invalid_client",
                "the token was issued to a client: identify as that client (authenticate, if it is confidential)",
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
