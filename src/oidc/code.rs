//! Authorization codes and the `authorization_code` grant (RFC 6749 section 4.1.3, RFC 7636,
//! OpenID Connect Core 3.1.3). A code is 256 random bits, stored as its SHA-256, valid 60 s,
//! bound to its client, redirect URI, PKCE challenge, nonce, scope, user and auth time, and
//! spent by one conditional `UPDATE` that also names the refresh family it will start. A
//! second use is `invalid_grant` and revokes that family: every token the first use issued.

use std::collections::HashMap;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{at_hash, digest, pkce_matches, random_secret};
use crate::audit::{self, Event};
use crate::clients::Client;
use crate::db::entities::auth_codes::{self as codes, Column as C, Entity as Codes};
use crate::error::Error;
use crate::keys::Purpose;
use crate::oauth::OAuthError;
use crate::sessions::{Grant, TokenPair};
use crate::state::App;

/// How long a code may be redeemed (seconds).
pub const CODE_TTL: i64 = 60;

/// Everything a code is bound to.
pub struct CodeBinding {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub nonce: Option<String>,
    pub scope: String,
    pub user_id: String,
    pub auth_time: i64,
    pub sso_id: String,
}

/// Store a new code for `b`; returns the code (never stored itself).
pub async fn issue(app: &App, b: CodeBinding, now: i64) -> crate::error::Result<String> {
    let code = random_secret();
    let row = codes::Model {
        code_hash: digest(&code),
        client_id: b.client_id,
        redirect_uri: b.redirect_uri,
        code_challenge: b.challenge,
        nonce: b.nonce,
        scope: b.scope,
        user_id: b.user_id,
        auth_time: b.auth_time,
        sso_id: b.sso_id,
        created_at: now,
        expires_at: now + CODE_TTL,
        used_at: None,
        family_id: None,
        reused_at: None,
    };
    Codes::insert(codes::ActiveModel::from(row))
        .exec_without_returning(&app.db)
        .await?;
    Ok(code)
}

/// Claims of an ID token (OpenID Connect Core section 2).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub at_hash: String,
    pub azp: String,
    /// The SSO session (`km_sso`) the sign-in belongs to.
    pub sid: String,
}

/// What the `authorization_code` grant issues.
pub struct CodeTokens {
    pub pair: TokenPair,
    pub id_token: String,
    /// Whether the client may have the refresh token (it holds the `refresh_token` grant).
    pub with_refresh: bool,
}

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new("invalid_grant", description)
}

/// `grant_type=authorization_code`. `client` is the authenticated confidential client or the
/// identified public one.
pub async fn grant(
    app: &App,
    client: Option<&Client>,
    form: &HashMap<String, String>,
    now: i64,
) -> Result<CodeTokens, OAuthError> {
    let client =
        client.ok_or_else(|| OAuthError::new("invalid_client", "client authentication failed"))?;
    if !client.allows("authorization_code") {
        return Err(OAuthError::new(
            "unauthorized_client",
            "this client may not use the authorization_code grant",
        ));
    }
    let field = |name: &str| {
        form.get(name).map(String::as_str).ok_or_else(|| {
            OAuthError::new("invalid_request", format!("missing parameter {name:?}"))
        })
    };
    let (code, redirect_uri) = (field("code")?, field("redirect_uri")?);
    let verifier = form
        .get("code_verifier")
        .ok_or_else(|| invalid_grant("code_verifier is required (PKCE)"))?;
    let hash = digest(code);
    let row = match Codes::find_by_id(hash.clone()).one(&app.db).await {
        Ok(Some(r)) if code.len() <= 128 => r,
        Ok(_) => return Err(invalid_grant("the code is not valid")),
        Err(e) => return Err(Error::from(e).into()),
    };
    if row.used_at.is_some() {
        return Err(reused(app, &hash, now).await);
    }
    if row.expires_at <= now {
        return Err(invalid_grant("the code has expired"));
    }
    if row.client_id != client.client_id {
        return Err(invalid_grant("the code was issued to another client"));
    }
    if row.redirect_uri != redirect_uri {
        return Err(invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    if !pkce_matches(verifier, &row.code_challenge) {
        return Err(invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    // Spend the code, naming the family before it exists, so that a concurrent second use
    // knows what to revoke.
    let family = uuid::Uuid::new_v4().simple().to_string();
    let spent = Codes::update_many()
        .col_expr(C::UsedAt, Expr::value(now))
        .col_expr(C::FamilyId, Expr::value(family.clone()))
        .filter(C::CodeHash.eq(hash.clone()))
        .filter(C::UsedAt.is_null())
        .exec(&app.db)
        .await
        .map_err(Error::from)?;
    if spent.rows_affected != 1 {
        return Err(reused(app, &hash, now).await);
    }
    let user = match app.users.by_id(&row.user_id).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(invalid_grant("the user is no longer active")),
    };
    let grant = Grant {
        user,
        client_id: Some(client.client_id.clone()),
        scope: row.scope.clone(),
        audience: client
            .audience
            .clone()
            .unwrap_or_else(|| app.config.audience.clone()),
        sso: Some(row.sso_id.clone()),
    };
    let pair = app.sessions.start_family(grant, &family, now).await?;
    // A second use that arrived between the spend and the family's insert revoked a family
    // that did not exist yet: look again now that it does.
    let again = Codes::find_by_id(hash)
        .one(&app.db)
        .await
        .map_err(Error::from)?;
    // Likewise a sign-out (or a revocation of the user's sessions) that ended the browser
    // session meanwhile: every family it started must die, this one included.
    let session = super::sso::find_by_id(app, &row.sso_id, now).await?;
    if session.is_none_or(|s| s.user_id != row.user_id) {
        app.sessions
            .revoke_family(&family, "browser session ended", now)
            .await?;
        return Err(invalid_grant("the sign-in this code came from has ended"));
    }
    if again.is_none_or(|r| r.reused_at.is_some()) {
        app.sessions
            .revoke_family(&family, "authorization code reused", now)
            .await?;
        return Err(invalid_grant(
            "the code was used twice; its tokens are revoked",
        ));
    }
    let claims = IdClaims {
        iss: app.config.issuer.clone(),
        sub: row.user_id.clone(),
        aud: client.client_id.clone(),
        exp: now + app.config.id_token_ttl.as_secs() as i64,
        iat: now,
        auth_time: row.auth_time,
        nonce: row.nonce.clone(),
        at_hash: at_hash(&pair.access_token),
        azp: client.client_id.clone(),
        sid: row.sso_id.clone(),
    };
    let id_token = sign_id_token(app, claims).await?;
    Ok(CodeTokens {
        pair,
        id_token,
        with_refresh: client.allows("refresh_token"),
    })
}

/// Sign an ID token with the active access key (`typ: JWT`, so no access-token check accepts it).
async fn sign_id_token(app: &App, claims: IdClaims) -> Result<String, Error> {
    let (ring, tokens) = (app.keys.ring(), app.tokens.clone());
    app.signing
        .sign(move || tokens.sign_typed(&ring, Purpose::Access, "JWT", &claims))
        .await
}

/// A code presented again: mark it, revoke what its first use issued, audit; the answer is
/// always `invalid_grant`.
async fn reused(app: &App, hash: &str, now: i64) -> OAuthError {
    let marked = Codes::update_many()
        .col_expr(C::ReusedAt, Expr::value(now))
        .filter(C::CodeHash.eq(hash))
        .exec(&app.db)
        .await;
    let row = match marked {
        Ok(_) => Codes::find_by_id(hash.to_string()).one(&app.db).await,
        Err(e) => Err(e),
    };
    let family = match row {
        Ok(r) => r.and_then(|r| r.family_id.map(|f| (f, r.client_id, r.user_id))),
        Err(e) => return Error::from(e).into(),
    };
    if let Some((family, client_id, user_id)) = family {
        if let Err(e) = app
            .sessions
            .revoke_family(&family, "authorization code reused", now)
            .await
        {
            return e.into();
        }
        audit::record(
            &app.db,
            Event::new("token.revoke", "ok")
                .subject(Some(&user_id))
                .detail(json!({"reason": "authorization code reused", "sid": family, "client_id": client_id})),
            now,
        )
        .await;
    }
    invalid_grant("the code was already used; the tokens it issued are revoked")
}
