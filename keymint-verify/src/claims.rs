//! The claims of a keymint access token (RFC 9068 profile, SPEC section 3).

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::VerifyError;

/// A verified access token's claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The issuer.
    pub iss: String,
    /// The user's id, or the client's for `client_credentials` tokens.
    pub sub: String,
    /// The audiences (keymint issues one).
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    #[serde(default)]
    pub iat: i64,
    /// Not before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The token's id, which revocations name.
    pub jti: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
    /// The user's roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The refresh family (sign-in session); absent for `client_credentials` tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The OAuth client the token was issued to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// keymint's `type` claim: `access`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
}

impl Claims {
    /// True when the space-separated `scope` claim contains `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}

/// The registered-claim rules a verifier applies (RFC 7519 section 4.1, RFC 9068 section 4).
pub(crate) struct Rules {
    pub issuer: String,
    pub audience: String,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway: i64,
}

impl Rules {
    pub fn check(&self, c: &Claims, now: i64) -> Result<(), VerifyError> {
        if c.iss != self.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if !c.aud.contains(&self.audience) {
            return Err(VerifyError::WrongAudience);
        }
        if c.exp.saturating_add(self.leeway) < now {
            return Err(VerifyError::Expired);
        }
        if c.nbf
            .is_some_and(|nbf| nbf.saturating_sub(self.leeway) > now)
        {
            return Err(VerifyError::NotYetValid);
        }
        // keymint marks every access token `type: access` (SPEC section 3).
        if c.token_type.as_deref() != Some("access") {
            return Err(VerifyError::WrongType);
        }
        Ok(())
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Aud::deserialize(d)? {
        Aud::One(a) => vec![a],
        Aud::Many(v) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        serde_json::from_value(serde_json::json!({
            "iss": "https://id", "sub": "u", "aud": "https://id", "exp": 1000, "iat": 900,
            "nbf": 900, "jti": "j", "type": "access",
        }))
        .unwrap()
    }

    #[test]
    fn each_registered_claim_is_checked_with_the_leeway() {
        let r = Rules {
            issuer: "https://id".into(),
            audience: "https://id".into(),
            leeway: 30,
        };
        let ok = claims();
        assert_eq!(r.check(&ok, 1030), Ok(()));
        assert_eq!(r.check(&ok, 1031), Err(VerifyError::Expired));
        assert_eq!(r.check(&ok, 870), Ok(()));
        assert_eq!(r.check(&ok, 869), Err(VerifyError::NotYetValid));
        let mut c = claims();
        c.iss = "https://other".into();
        assert_eq!(r.check(&c, 950), Err(VerifyError::WrongIssuer));
        let mut c = claims();
        c.aud = vec!["https://api".into()];
        assert_eq!(r.check(&c, 950), Err(VerifyError::WrongAudience));
        let mut c = claims();
        c.token_type = None;
        assert_eq!(r.check(&c, 950), Err(VerifyError::WrongType));
    }
}
