//! What can go wrong, in verification and in building a verifier.

use std::fmt;

/// Why a token was refused. [`VerifyError::reason`] names it for logs and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a JWT, too long, a header or claims that do not parse, or a required claim missing.
    Malformed,
    /// Not an access token: `typ` is not `at+jwt` (e.g. a refresh or an ID token).
    WrongType,
    /// No `kid`, or one the issuer does not publish (after at most one refetch per cooldown).
    UnknownKey,
    /// The signature does not verify with the published key, or the token asks for another
    /// algorithm than the key's RS256.
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    NotYetValid,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    WrongAudience,
    /// The token lacks this required scope.
    InsufficientScope(String),
    /// The token, its session (`sid`) or its client was revoked.
    Revoked,
    /// The JWKS could not be fetched for longer than the staleness bound (fail closed).
    KeysUnavailable,
    /// The revocation feed could not be read for longer than its bound (fail closed).
    RevocationsUnavailable,
}

impl VerifyError {
    /// Every reason, in the order of [`crate::Stats::rejected`].
    pub const REASONS: [&'static str; 12] = [
        "malformed",
        "wrong_type",
        "unknown_key",
        "bad_signature",
        "expired",
        "not_yet_valid",
        "wrong_issuer",
        "wrong_audience",
        "insufficient_scope",
        "revoked",
        "keys_unavailable",
        "revocations_unavailable",
    ];

    /// A short stable name: `expired`, `revoked`, `unknown_key`, ...
    pub fn reason(&self) -> &'static str {
        Self::REASONS[self.index()]
    }

    pub(crate) fn index(&self) -> usize {
        match self {
            VerifyError::Malformed => 0,
            VerifyError::WrongType => 1,
            VerifyError::UnknownKey => 2,
            VerifyError::BadSignature => 3,
            VerifyError::Expired => 4,
            VerifyError::NotYetValid => 5,
            VerifyError::WrongIssuer => 6,
            VerifyError::WrongAudience => 7,
            VerifyError::InsufficientScope(_) => 8,
            VerifyError::Revoked => 9,
            VerifyError::KeysUnavailable => 10,
            VerifyError::RevocationsUnavailable => 11,
        }
    }

    /// True when the token itself is at fault; false when this verifier cannot currently
    /// judge it (keys or feed unavailable).
    pub fn is_token_error(&self) -> bool {
        !matches!(
            self,
            VerifyError::KeysUnavailable | VerifyError::RevocationsUnavailable
        )
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            VerifyError::Malformed => "the token is malformed",
            VerifyError::WrongType => "not an access token",
            VerifyError::UnknownKey => "the token's key is unknown",
            VerifyError::BadSignature => "the signature does not verify",
            VerifyError::Expired => "the token has expired",
            VerifyError::NotYetValid => "the token is not valid yet",
            VerifyError::WrongIssuer => "the token is from another issuer",
            VerifyError::WrongAudience => "the token is for another audience",
            VerifyError::InsufficientScope(s) => return write!(f, "the token lacks scope {s:?}"),
            VerifyError::Revoked => "the token was revoked",
            VerifyError::KeysUnavailable => "the issuer's keys are unavailable",
            VerifyError::RevocationsUnavailable => "the revocation feed is unavailable",
        };
        f.write_str(text)
    }
}

impl std::error::Error for VerifyError {}

/// Why [`crate::Builder::build`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The HTTP client could not be built.
    Http(String),
    /// The discovery document could not be read.
    Discovery(String),
    /// The first JWKS fetch failed.
    Jwks(String),
    /// The first read of the revocation feed failed (e.g. wrong client credentials).
    Revocations(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Http(e) => write!(f, "HTTP client: {e}"),
            BuildError::Discovery(e) => write!(f, "discovery: {e}"),
            BuildError::Jwks(e) => write!(f, "JWKS: {e}"),
            BuildError::Revocations(e) => write!(f, "revocation feed: {e}"),
        }
    }
}

impl std::error::Error for BuildError {}

#[cfg(test)]
mod tests {
    use super::VerifyError;

    #[test]
    fn every_reason_has_its_own_name() {
        let all = [
            VerifyError::Malformed,
            VerifyError::WrongType,
            VerifyError::UnknownKey,
            VerifyError::BadSignature,
            VerifyError::Expired,
            VerifyError::NotYetValid,
            VerifyError::WrongIssuer,
            VerifyError::WrongAudience,
            VerifyError::InsufficientScope("a".into()),
            VerifyError::Revoked,
            VerifyError::KeysUnavailable,
            VerifyError::RevocationsUnavailable,
        ];
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(e.reason(), VerifyError::REASONS[i]);
        }
    }
}
