//! The one error type of the domain, with stable codes. It knows nothing of HTTP: `http::error`
//! maps codes to statuses and bodies, `http::oauth` to RFC 6749 errors. Database and crypto
//! failures carry a detail that only the log sees.

use serde::Serialize;

/// Declares `ErrorCode` from one list: each variant with its wire name, so the enum, `ALL` and
/// `as_str` cannot drift apart.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $wire:literal,)*) => {
        /// Stable, greppable error codes of the API (SPEC section 4).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, for exhaustive tables.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)*
                }
            }
        }
    };
}

error_codes! {
    InvalidCredentials = "INVALID_CREDENTIALS",
    MissingToken = "MISSING_TOKEN",
    InvalidToken = "INVALID_TOKEN",
    TokenExpired = "TOKEN_EXPIRED",
    TokenRevoked = "TOKEN_REVOKED",
    RefreshTokenExpired = "REFRESH_TOKEN_EXPIRED",
    RefreshTokenReused = "REFRESH_TOKEN_REUSED",
    Forbidden = "FORBIDDEN",
    NotFound = "NOT_FOUND",
    Conflict = "CONFLICT",
    ValidationError = "VALIDATION_ERROR",
    PayloadTooLarge = "PAYLOAD_TOO_LARGE",
    RateLimited = "RATE_LIMITED",
    /// A cookie-authenticated request without the session's CSRF token or from a foreign origin.
    CsrfFailed = "CSRF_FAILED",
    /// The request did not complete within `KEYMINT_REQUEST_TIMEOUT`.
    RequestTimeout = "REQUEST_TIMEOUT",
    ServiceUnavailable = "SERVICE_UNAVAILABLE",
    InternalError = "INTERNAL_ERROR",
}

/// A domain error: a code, a message safe to show the caller, and for internal errors a
/// detail that is logged but never sent.
#[derive(Debug)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds to wait, for `RATE_LIMITED` and `SERVICE_UNAVAILABLE`.
    pub retry_after: Option<u64>,
    internal: Option<String>,
}

/// Result alias used across the domain modules.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
            internal: None,
        }
    }

    /// An unexpected failure: the caller sees a generic message, the log sees `detail`.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self {
            code: ErrorCode::InternalError,
            message: "internal error".into(),
            retry_after: None,
            internal: Some(detail.to_string()),
        }
    }

    /// `SERVICE_UNAVAILABLE`: a dependency (the database) cannot be reached; retry in a second.
    /// The caller sees a generic message, the log sees `detail`.
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        Self {
            code: ErrorCode::ServiceUnavailable,
            message: "temporarily unavailable; retry shortly".into(),
            retry_after: Some(1),
            internal: Some(detail.to_string()),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationError, message)
    }

    /// `RATE_LIMITED`, retry after `secs` seconds.
    pub fn rate_limited(secs: u64) -> Self {
        Self {
            retry_after: Some(secs),
            ..Self::new(
                ErrorCode::RateLimited,
                "too many failed attempts; retry later",
            )
        }
    }

    pub fn invalid_token() -> Self {
        Self::new(ErrorCode::InvalidToken, "the token is not valid")
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// The logged detail of an internal error, if any.
    pub fn detail(&self) -> Option<&str> {
        self.internal.as_deref()
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.internal {
            Some(d) => write!(f, "{}: {d}", self.code.as_str()),
            None => write!(f, "{}: {}", self.code.as_str(), self.message),
        }
    }
}

impl std::error::Error for Error {}

impl From<sea_orm::DbErr> for Error {
    fn from(e: sea_orm::DbErr) -> Self {
        if crate::db::is_unavailable(&e) {
            Error::unavailable(format!("database: {e}"))
        } else {
            Error::internal(format!("database: {e}"))
        }
    }
}

impl From<sea_orm::TransactionError<Error>> for Error {
    fn from(e: sea_orm::TransactionError<Error>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_the_serde_names() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn internal_detail_is_kept_apart_from_the_message() {
        let e = Error::internal("password=hunter2 connection refused");
        assert_eq!(e.code, ErrorCode::InternalError);
        assert!(!e.message.contains("hunter2"));
        assert_eq!(e.detail(), Some("password=hunter2 connection refused"));
    }
}
