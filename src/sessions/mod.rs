//! Sessions: token pairs, refresh families, rotation with reuse detection; ending sessions
//! (revoking families, logout) is in `revoke`.
//!
//! Architecture invariants:
//! - a refresh token is spent by one conditional `UPDATE … WHERE used_at IS NULL AND
//!   revoked_at IS NULL` in the same transaction that inserts its successor, so of N
//!   concurrent refreshes exactly one wins, on SQLite and Postgres alike;
//! - revoking a family marks all its refresh tokens revoked *and* adds a `sid` denylist row,
//!   so both its refresh tokens and the access tokens issued from it are refused.

use std::sync::Arc;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};
use serde_json::json;

use crate::audit::{self, Event};
use crate::db::entities::{refresh_families as fam, refresh_tokens as rt};
use crate::error::{Error, ErrorCode, Result};
use crate::keys::{KeyManager, Purpose};
use crate::revocation::Denylist;
use crate::tokens::{AccessClaims, AccessFor, RefreshClaims, Rejection, Tokens};
use crate::users::{User, UserStore};

mod revoke;

/// A freshly issued pair. `Debug` shows the claims, never the bearer tokens.
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
    pub scope: String,
    pub access: AccessClaims,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"<hidden>")
            .field("refresh_token", &"<hidden>")
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .field("scope", &self.scope)
            .field("access", &self.access)
            .finish()
    }
}

/// Who a pair is for.
pub struct Grant {
    pub user: User,
    pub client_id: Option<String>,
    pub scope: String,
    pub audience: String,
    /// The browser (SSO) session this sign-in belongs to, if any.
    pub sso: Option<String>,
}

/// Session operations over the database, keys and denylist.
pub struct Sessions {
    pub db: DatabaseConnection,
    pub keys: Arc<KeyManager>,
    pub tokens: Arc<Tokens>,
    pub denylist: Arc<Denylist>,
    pub users: UserStore,
    pub reuse_grace: i64,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where signatures are made (one thread per core, off the async workers).
    pub signing: Arc<crate::pool::WorkPool>,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Map a refresh-token rejection to the API's code.
fn refresh_error(r: Rejection) -> Error {
    match r {
        Rejection::Expired => Error::new(
            ErrorCode::RefreshTokenExpired,
            "the refresh token has expired",
        ),
        _ => Error::new(ErrorCode::InvalidToken, "the refresh token is not valid"),
    }
}

impl Sessions {
    /// Sign an access token and a refresh token on the signing threads.
    async fn sign_pair(
        &self,
        access: AccessClaims,
        refresh: RefreshClaims,
    ) -> Result<(String, String)> {
        let ring = self.keys.ring();
        let tokens = self.tokens.clone();
        self.signing
            .sign(move || {
                let a = tokens.sign(&ring, Purpose::Access, &access)?;
                let r = tokens.sign(&ring, Purpose::Refresh, &refresh)?;
                Ok((a, r))
            })
            .await
    }

    fn claims(&self, g: &Grant, family: &str, now: i64) -> (AccessClaims, RefreshClaims) {
        let t = &self.tokens;
        let access = t.access_claims(
            AccessFor {
                sub: g.user.id.clone(),
                aud: g.audience.clone(),
                scope: g.scope.clone(),
                roles: g.user.roles.clone(),
                sid: Some(family.to_string()),
                client_id: g.client_id.clone(),
            },
            now,
        );
        let refresh = RefreshClaims {
            iss: t.issuer.clone(),
            sub: g.user.id.clone(),
            aud: t.issuer.clone(),
            exp: now + t.refresh_ttl,
            iat: now,
            nbf: now,
            jti: new_id(),
            token_type: "refresh".into(),
            fam: family.to_string(),
        };
        (access, refresh)
    }

    fn pair(
        &self,
        access: AccessClaims,
        tokens: (String, String),
        refresh_exp: i64,
        now: i64,
    ) -> TokenPair {
        self.metrics.issued(crate::metrics::Issued::Access);
        self.metrics.issued(crate::metrics::Issued::Refresh);
        TokenPair {
            access_token: tokens.0,
            refresh_token: tokens.1,
            expires_in: access.exp - now,
            refresh_expires_in: refresh_exp - now,
            scope: access.scope.clone(),
            access,
        }
    }

    /// Start a new refresh family for a user who just authenticated.
    pub async fn start(&self, g: Grant, now: i64) -> Result<TokenPair> {
        self.start_family(g, &new_id(), now).await
    }

    /// `start`, with the family id chosen by the caller (the code grant names it when it
    /// spends the code).
    pub async fn start_family(&self, g: Grant, family: &str, now: i64) -> Result<TokenPair> {
        let family = family.to_string();
        let (access, refresh) = self.claims(&g, &family, now);
        let (rjti, rexp) = (refresh.jti.clone(), refresh.exp);
        let signed = self.sign_pair(access.clone(), refresh).await?;
        let fam_row = fam::ActiveModel {
            id: Set(family.clone()),
            user_id: Set(Some(g.user.id.clone())),
            client_id: Set(g.client_id.clone()),
            scope: Set(g.scope.clone()),
            audience: Set(g.audience.clone()),
            created_at: Set(now),
            expires_at: Set(rexp),
            revoked_at: Set(None),
            revoked_reason: Set(None),
            sso_id: Set(g.sso.clone()),
        };
        let tok_row = token_row(&rjti, &family, now, rexp, &access);
        self.db
            .transaction::<_, (), Error>(|txn| {
                Box::pin(async move {
                    fam::Entity::insert(fam_row)
                        .exec_without_returning(txn)
                        .await?;
                    rt::Entity::insert(tok_row)
                        .exec_without_returning(txn)
                        .await?;
                    Ok(())
                })
            })
            .await?;
        Ok(self.pair(access, signed, rexp, now))
    }

    /// Exchange a refresh token for a new pair in the same family. A second use of the same
    /// token revokes the family (unless within the configured grace period).
    ///
    /// `caller` is the authenticated OAuth client, if any: a family issued to a client can be
    /// refreshed only by that client. `scope` narrows the new access token's scope (already
    /// checked against the family's by the caller); the family keeps its own.
    pub async fn refresh(
        &self,
        token: &str,
        caller: Option<&str>,
        scope: Option<&str>,
        now: i64,
    ) -> Result<TokenPair> {
        let claims = self
            .tokens
            .verify_refresh(&self.keys.ring(), token, now)
            .map_err(|r| {
                self.metrics.verify_failed(r);
                refresh_error(r)
            })?;
        let row = rt::Entity::find_by_id(claims.jti.clone())
            .one(&self.db)
            .await?
            .ok_or_else(Error::invalid_token)?;
        let family = fam::Entity::find_by_id(row.family_id.clone())
            .one(&self.db)
            .await?
            .ok_or_else(Error::invalid_token)?;
        if family.id != claims.fam {
            return Err(Error::invalid_token());
        }
        if family.revoked_at.is_some() || row.revoked_at.is_some() {
            return Err(revoked());
        }
        if family.client_id.as_deref() != caller {
            return Err(Error::new(
                ErrorCode::InvalidToken,
                "the refresh token was issued to another client",
            ));
        }
        let user_id = family.user_id.clone().ok_or_else(Error::invalid_token)?;
        let user = match self.users.by_id(&user_id).await? {
            Some(u) if !u.disabled => u,
            _ => return Err(revoked()),
        };
        let grant = Grant {
            user,
            client_id: family.client_id.clone(),
            scope: scope
                .map(str::to_string)
                .unwrap_or_else(|| family.scope.clone()),
            audience: family.audience.clone(),
            sso: family.sso_id.clone(),
        };
        let (access, refresh) = self.claims(&grant, &family.id, now);
        let (new_jti, rexp) = (refresh.jti.clone(), refresh.exp);
        let signed = self.sign_pair(access.clone(), refresh).await?;

        let won = {
            let (old, new_row, fid, nj) = (
                claims.jti.clone(),
                token_row(&new_jti, &family.id, now, rexp, &access),
                family.id.clone(),
                new_jti.clone(),
            );
            self.db
                .transaction::<_, bool, Error>(|txn| {
                    Box::pin(async move {
                        // The spend comes first: on SQLite it takes the write lock before any read.
                        let spent = rt::Entity::update_many()
                            .col_expr(rt::Column::UsedAt, Expr::value(now))
                            .col_expr(rt::Column::ReplacedBy, Expr::value(nj))
                            .filter(rt::Column::Jti.eq(old))
                            .filter(rt::Column::UsedAt.is_null())
                            .filter(rt::Column::RevokedAt.is_null())
                            .exec(txn)
                            .await?;
                        if spent.rows_affected != 1 {
                            return Ok(false);
                        }
                        rt::Entity::insert(new_row)
                            .exec_without_returning(txn)
                            .await?;
                        extend_family(txn, &fid, rexp).await?;
                        Ok(true)
                    })
                })
                .await?
        };
        if won {
            return Ok(self.pair(access, signed, rexp, now));
        }

        // Lost: the token was spent or revoked meanwhile. Decide which.
        let row = rt::Entity::find_by_id(claims.jti.clone())
            .one(&self.db)
            .await?
            .ok_or_else(Error::invalid_token)?;
        if row.revoked_at.is_some() {
            return Err(revoked());
        }
        let within_grace =
            self.reuse_grace > 0 && row.used_at.is_some_and(|u| now - u <= self.reuse_grace);
        if within_grace && let Some(pair) = self.replay_successor(&row, &claims, now).await? {
            // A client that lost the response retries: it gets the very pair the first
            // refresh issued, never a second live branch of the family.
            return Ok(pair);
        }
        self.revoke_family(&family.id, "refresh token reuse", now)
            .await?;
        audit::record(
            &self.db,
            Event::new("token.reuse", "revoked_family")
                .subject(Some(&user_id))
                .detail(json!({"family": family.id, "jti": claims.jti})),
            now,
        )
        .await;
        Err(Error::new(
            ErrorCode::RefreshTokenReused,
            "this refresh token was already used; its whole session has been revoked",
        ))
    }

    /// The pair issued when `spent` was exchanged, signed again from its stored claims (RS256
    /// signatures are deterministic, so with the same keys these are the same bytes). `None`
    /// when the successor is itself spent or revoked, or its claims were not recorded.
    async fn replay_successor(
        &self,
        spent: &rt::Model,
        claims: &RefreshClaims,
        now: i64,
    ) -> Result<Option<TokenPair>> {
        let Some(next) = &spent.replaced_by else {
            return Ok(None);
        };
        let Some(row) = rt::Entity::find_by_id(next.clone()).one(&self.db).await? else {
            return Ok(None);
        };
        if row.used_at.is_some() || row.revoked_at.is_some() {
            return Ok(None);
        }
        let Some(access) = row
            .access_claims
            .as_deref()
            .and_then(|j| serde_json::from_str::<AccessClaims>(j).ok())
        else {
            return Ok(None);
        };
        let refresh = RefreshClaims {
            iss: self.tokens.issuer.clone(),
            sub: claims.sub.clone(),
            aud: self.tokens.issuer.clone(),
            exp: row.expires_at,
            iat: row.issued_at,
            nbf: row.issued_at,
            jti: row.jti.clone(),
            token_type: "refresh".into(),
            fam: row.family_id.clone(),
        };
        let signed = self.sign_pair(access.clone(), refresh).await?;
        Ok(Some(self.pair(access, signed, row.expires_at, now)))
    }
}

fn revoked() -> Error {
    Error::new(ErrorCode::TokenRevoked, "the token has been revoked")
}

fn token_row(
    jti: &str,
    family: &str,
    now: i64,
    exp: i64,
    access: &AccessClaims,
) -> rt::ActiveModel {
    rt::ActiveModel {
        access_claims: Set(serde_json::to_string(access).ok()),
        jti: Set(jti.to_string()),
        family_id: Set(family.to_string()),
        issued_at: Set(now),
        expires_at: Set(exp),
        used_at: Set(None),
        replaced_by: Set(None),
        revoked_at: Set(None),
    }
}

async fn extend_family(txn: &sea_orm::DatabaseTransaction, fid: &str, exp: i64) -> Result<()> {
    fam::Entity::update_many()
        .col_expr(fam::Column::ExpiresAt, Expr::value(exp))
        .filter(fam::Column::Id.eq(fid))
        .exec(txn)
        .await?;
    Ok(())
}
