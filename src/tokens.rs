//! Token claims, signing and verification (SPEC section 3). Pure functions of a key ring, a
//! token and `now`: no database, no HTTP. Architecture invariant: this module never imports
//! axum, and verification accepts exactly RS256 with a kid the ring holds for the purpose.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::keys::{KeyRing, Purpose};

pub mod cache;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Whom an access token is for: the parts of its claims that vary per token.
pub struct AccessFor {
    pub sub: String,
    pub aud: String,
    pub scope: String,
    pub roles: Vec<String>,
    /// The refresh family (session); `None` for client_credentials.
    pub sid: Option<String>,
    pub client_id: Option<String>,
}

/// Claims of an access token (RFC 9068 profile).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    #[serde(rename = "type")]
    pub token_type: String,
    pub scope: String,
    pub roles: Vec<String>,
    /// The refresh family this token came from; absent for client_credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// Claims of a refresh token. Signed by a refresh key, which no JWKS ever publishes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefreshClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    #[serde(rename = "type")]
    pub token_type: String,
    /// The rotation family.
    pub fam: String,
}

/// Why a token failed verification; also the label of the failure metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    TooLarge,
    Malformed,
    Algorithm,
    WrongType,
    UnknownKid,
    Signature,
    Claims,
    NotYetValid,
    Expired,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::TooLarge => "too_large",
            Rejection::Malformed => "malformed",
            Rejection::Algorithm => "algorithm",
            Rejection::WrongType => "wrong_type",
            Rejection::UnknownKid => "unknown_kid",
            Rejection::Signature => "signature",
            Rejection::Claims => "claims",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::Expired => "expired",
        }
    }
}

#[derive(Serialize)]
struct JwsHeader<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
}

/// Issuer-wide token settings.
pub struct Tokens {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
    pub leeway: i64,
    refresh_validation: Validation,
    /// Access tokens verified before (see `cache`).
    verified: cache::VerifiedCache,
}

const ACCESS_TYP: &str = "at+jwt";
const REFRESH_TYP: &str = "JWT";

impl Tokens {
    pub fn new(
        issuer: String,
        audience: String,
        access_ttl: i64,
        refresh_ttl: i64,
        leeway: i64,
    ) -> Self {
        let refresh_validation = validation(&issuer, Some(&issuer));
        Self {
            issuer,
            audience,
            access_ttl,
            refresh_ttl,
            leeway,
            refresh_validation,
            verified: cache::VerifiedCache::default(),
        }
    }

    /// Sign a JWT with the active key of `purpose`.
    pub fn sign<C: Serialize>(
        &self,
        ring: &KeyRing,
        purpose: Purpose,
        claims: &C,
    ) -> Result<String, String> {
        let typ = match purpose {
            Purpose::Access => ACCESS_TYP,
            Purpose::Refresh => REFRESH_TYP,
        };
        self.sign_typed(ring, purpose, typ, claims)
    }

    /// Sign a JWT with the active key of `purpose` and header `typ` (ID tokens: an access
    /// key, `typ: JWT`, which no access-token check accepts).
    pub fn sign_typed<C: Serialize>(
        &self,
        ring: &KeyRing,
        purpose: Purpose,
        typ: &str,
        claims: &C,
    ) -> Result<String, String> {
        let signer = ring
            .signer(purpose)
            .ok_or_else(|| format!("no active {} key", purpose.as_str()))?;
        let header = serde_json::to_vec(&JwsHeader {
            alg: "RS256",
            typ,
            kid: &signer.kid,
        })
        .map_err(|e| e.to_string())?;
        let body = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        let mut out = String::with_capacity(1024);
        B64.encode_string(header, &mut out);
        out.push('.');
        B64.encode_string(body, &mut out);
        let sig = signer.sign(&ring.rng, out.as_bytes())?;
        out.push('.');
        B64.encode_string(sig, &mut out);
        Ok(out)
    }

    /// The one place access claims are made: every access token, whether it starts a session,
    /// refreshes one or is a client's own, gets its `iss`, lifetime, `jti` and `type` here.
    pub fn access_claims(&self, who: AccessFor, now: i64) -> AccessClaims {
        AccessClaims {
            iss: self.issuer.clone(),
            sub: who.sub,
            aud: who.aud,
            exp: now + self.access_ttl,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            token_type: "access".into(),
            scope: who.scope,
            roles: who.roles,
            sid: who.sid,
            client_id: who.client_id,
        }
    }

    /// Verify an access token. `audience` None accepts any audience (introspection); keymint's
    /// own endpoints pass its configured audience.
    /// A token verified before is answered from `cache` after re-checking what can change.
    pub fn verify_access(
        &self,
        ring: &KeyRing,
        token: &str,
        audience: Option<&str>,
        now: i64,
    ) -> Result<AccessClaims, Rejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::TooLarge);
        }
        let digest = cache::digest(token);
        if let Some((kid, c)) = self.verified.get(&digest) {
            // What a first verification checked that can change since: the key, the audience
            // asked for, and time.
            if ring.verifier(&kid, Purpose::Access, now).is_none() {
                return Err(Rejection::UnknownKid);
            }
            if audience.is_some_and(|a| a != c.aud) {
                return Err(Rejection::Claims);
            }
            if let Err(r) = self.check_times(c.exp, c.nbf, now) {
                if r == Rejection::Expired {
                    self.verified.remove(&digest);
                }
                return Err(r);
            }
            return Ok(c);
        }
        let v = validation(&self.issuer, audience);
        let (c, kid): (AccessClaims, _) =
            self.verify(ring, token, Purpose::Access, access_typ, &v, now)?;
        if c.token_type != "access" {
            return Err(Rejection::WrongType);
        }
        self.check_times(c.exp, c.nbf, now)?;
        self.verified.insert(digest, &kid, &c, now);
        Ok(c)
    }

    /// Access tokens held as verified (tests read it).
    pub fn verified_len(&self) -> usize {
        self.verified.len()
    }

    /// Verify a refresh token (signature by a refresh key, `aud` = issuer, `type` = refresh).
    pub fn verify_refresh(
        &self,
        ring: &KeyRing,
        token: &str,
        now: i64,
    ) -> Result<RefreshClaims, Rejection> {
        let (c, _): (RefreshClaims, _) = self.verify(
            ring,
            token,
            Purpose::Refresh,
            |t| t == REFRESH_TYP,
            &self.refresh_validation,
            now,
        )?;
        if c.token_type != "refresh" {
            return Err(Rejection::WrongType);
        }
        self.check_times(c.exp, c.nbf, now)?;
        Ok(c)
    }

    fn check_times(&self, exp: i64, nbf: i64, now: i64) -> Result<(), Rejection> {
        if nbf > now + self.leeway {
            return Err(Rejection::NotYetValid);
        }
        if exp + self.leeway <= now {
            return Err(Rejection::Expired);
        }
        Ok(())
    }

    /// Verify signature, header and `validation` claims of a JWT signed by a key of
    /// `purpose` whose header `typ` passes `typ_ok`; also gives the kid that verified.
    pub(crate) fn verify<C: DeserializeOwned>(
        &self,
        ring: &KeyRing,
        token: &str,
        purpose: Purpose,
        typ_ok: fn(&str) -> bool,
        validation: &Validation,
        now: i64,
    ) -> Result<(C, String), Rejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::TooLarge);
        }
        // jku, x5u and jwk headers are parsed but never consulted: keys come only from the ring.
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(Rejection::Algorithm);
        }
        if !header.typ.as_deref().is_some_and(typ_ok) {
            return Err(Rejection::WrongType);
        }
        let kid = header.kid.ok_or(Rejection::UnknownKid)?;
        let key = ring
            .verifier(&kid, purpose, now)
            .ok_or(Rejection::UnknownKid)?;
        jsonwebtoken::decode::<C>(token, &key.key, validation)
            .map(|d| (d.claims, kid))
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind::*;
                match e.kind() {
                    InvalidSignature => Rejection::Signature,
                    InvalidAlgorithm | InvalidAlgorithmName => Rejection::Algorithm,
                    InvalidIssuer | InvalidAudience | MissingRequiredClaim(_) | InvalidSubject => {
                        Rejection::Claims
                    }
                    _ => Rejection::Malformed,
                }
            })
    }
}

fn access_typ(t: &str) -> bool {
    t.eq_ignore_ascii_case(ACCESS_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
}

fn validation(issuer: &str, audience: Option<&str>) -> Validation {
    let mut v = Validation::new(Algorithm::RS256);
    // Time checks are ours (`check_times`) so they use the caller's clock.
    v.validate_exp = false;
    v.validate_nbf = false;
    v.leeway = 0;
    v.set_issuer(&[issuer]);
    match audience {
        Some(a) => v.set_audience(&[a]),
        None => v.validate_aud = false,
    }
    v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    v
}

#[cfg(test)]
mod tests;
