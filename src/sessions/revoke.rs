//! Ending sessions: a family, a user's families, a client's, and logout.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use super::Sessions;
use crate::db::entities::{
    auth_codes as codes, refresh_families as fam, refresh_tokens as rt, sso_sessions as sso,
};
use crate::error::{Error, Result};
use crate::revocation::{Denylist, Kind};
use crate::tokens::AccessClaims;

impl Sessions {
    /// Revoke a whole family: its refresh tokens and the access tokens issued from it.
    /// Returns false when it was already revoked.
    pub async fn revoke_family(&self, family_id: &str, reason: &str, now: i64) -> Result<bool> {
        let sid_until = now + self.tokens.access_ttl + self.tokens.leeway;
        let (fid, why) = (family_id.to_string(), reason.to_string());
        let changed = self
            .db
            .transaction::<_, bool, Error>(|txn| {
                Box::pin(async move {
                    rt::Entity::update_many()
                        .col_expr(rt::Column::RevokedAt, Expr::value(now))
                        .filter(rt::Column::FamilyId.eq(fid.clone()))
                        .filter(rt::Column::RevokedAt.is_null())
                        .exec(txn)
                        .await?;
                    let res = fam::Entity::update_many()
                        .col_expr(fam::Column::RevokedAt, Expr::value(now))
                        .col_expr(fam::Column::RevokedReason, Expr::value(why.clone()))
                        .filter(fam::Column::Id.eq(fid.clone()))
                        .filter(fam::Column::RevokedAt.is_null())
                        .exec(txn)
                        .await?;
                    Denylist::insert(txn, Kind::Sid, &fid, sid_until, &why, now).await?;
                    Ok(res.rows_affected > 0)
                })
            })
            .await?;
        self.denylist.remember(Kind::Sid, family_id, sid_until);
        Ok(changed)
    }

    /// Revoke every live family of a user (revoke-sessions, disable, delete, password change),
    /// and end their browser (SSO) sessions and unredeemed codes first, so none of those can
    /// mint a new family afterwards. Returns how many families were revoked.
    pub async fn revoke_user_sessions(&self, user_id: &str, reason: &str, now: i64) -> Result<u64> {
        sso::Entity::update_many()
            .col_expr(sso::Column::EndedAt, Expr::value(now))
            .filter(sso::Column::UserId.eq(user_id))
            .filter(sso::Column::EndedAt.is_null())
            .exec(&self.db)
            .await?;
        codes::Entity::update_many()
            .col_expr(codes::Column::UsedAt, Expr::value(now))
            .filter(codes::Column::UserId.eq(user_id))
            .filter(codes::Column::UsedAt.is_null())
            .exec(&self.db)
            .await?;
        self.revoke_families(fam::Column::UserId.eq(user_id), reason, now)
            .await
    }

    /// Revoke every live family a browser (SSO) session started (RP-initiated logout).
    pub async fn revoke_sso(&self, sso_id: &str, reason: &str, now: i64) -> Result<u64> {
        self.revoke_families(fam::Column::SsoId.eq(sso_id), reason, now)
            .await
    }

    /// Revoke every family issued to a client, and every access token it holds.
    pub async fn revoke_client(&self, client_id: &str, reason: &str, now: i64) -> Result<u64> {
        let n = self
            .revoke_families(fam::Column::ClientId.eq(client_id), reason, now)
            .await?;
        let until = now + self.tokens.access_ttl + self.tokens.leeway;
        self.denylist
            .revoke(Kind::Client, client_id, until, reason, now)
            .await?;
        Ok(n)
    }

    async fn revoke_families(
        &self,
        which: sea_orm::sea_query::SimpleExpr,
        reason: &str,
        now: i64,
    ) -> Result<u64> {
        let ids: Vec<String> = fam::Entity::find()
            .filter(which)
            .filter(fam::Column::RevokedAt.is_null())
            .filter(fam::Column::ExpiresAt.gt(now - self.tokens.leeway))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|f| f.id)
            .collect();
        let mut n = 0;
        for id in ids {
            n += u64::from(self.revoke_family(&id, reason, now).await?);
        }
        Ok(n)
    }

    /// Log out: revoke the presented access token and its family, and the family of the
    /// given refresh token when it verifies and belongs to the same user. Like RFC 7009, a
    /// refresh token that does not verify is nothing more to revoke, not an error.
    pub async fn logout(
        &self,
        access: &AccessClaims,
        refresh_token: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let extra_family = refresh_token
            .and_then(|t| self.tokens.verify_refresh(&self.keys.ring(), t, now).ok())
            .filter(|c| c.sub == access.sub && Some(&c.fam) != access.sid.as_ref())
            .map(|c| c.fam);
        self.denylist
            .revoke(
                Kind::Jti,
                &access.jti,
                access.exp + self.tokens.leeway,
                "logout",
                now,
            )
            .await?;
        for family in access.sid.iter().chain(extra_family.iter()) {
            self.revoke_family(family, "logout", now).await?;
        }
        Ok(())
    }
}
