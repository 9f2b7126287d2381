//! The one error type of the domain, with stable codes, and the one place those codes become
//! HTTP responses. Database and crypto failures reach the client as an opaque `INTERNAL_ERROR`
//! carrying an error id; the detail goes only to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Stable, greppable error codes of the HTTP API (SPEC section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidCredentials,
    MissingToken,
    InvalidToken,
    TokenExpired,
    TokenRevoked,
    RefreshTokenExpired,
    RefreshTokenReused,
    Forbidden,
    NotFound,
    Conflict,
    ValidationError,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    InternalError,
}

impl ErrorCode {
    /// The HTTP status each code is always answered with.
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            InvalidCredentials | MissingToken | InvalidToken | TokenExpired | TokenRevoked
            | RefreshTokenExpired | RefreshTokenReused => StatusCode::UNAUTHORIZED,
            Forbidden => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            Conflict => StatusCode::CONFLICT,
            ValidationError => StatusCode::BAD_REQUEST,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidCredentials => "INVALID_CREDENTIALS",
            MissingToken => "MISSING_TOKEN",
            InvalidToken => "INVALID_TOKEN",
            TokenExpired => "TOKEN_EXPIRED",
            TokenRevoked => "TOKEN_REVOKED",
            RefreshTokenExpired => "REFRESH_TOKEN_EXPIRED",
            RefreshTokenReused => "REFRESH_TOKEN_REUSED",
            Forbidden => "FORBIDDEN",
            NotFound => "NOT_FOUND",
            Conflict => "CONFLICT",
            ValidationError => "VALIDATION_ERROR",
            PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            RateLimited => "RATE_LIMITED",
            ServiceUnavailable => "SERVICE_UNAVAILABLE",
            InternalError => "INTERNAL_ERROR",
        }
    }
}

/// A domain error: a code, a message safe to show the caller, and for internal errors a
/// detail that is logged but never sent.
#[derive(Debug)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds to wait, for `RATE_LIMITED`.
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
        Error::internal(format!("database: {e}"))
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

/// The JSON body of every error response outside `/oauth/*`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": "INVALID_TOKEN", "message": "the token is not valid"}))]
pub struct ErrorBody {
    /// One of the stable error codes.
    pub error: ErrorCode,
    /// A human-readable explanation; never contains secrets.
    pub message: String,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let mut message = self.message;
        if let Some(detail) = &self.internal {
            // An opaque id ties the client's report to the log line without leaking the detail.
            let id = uuid::Uuid::new_v4().simple().to_string();
            tracing::error!(error_id = %id, "{detail}");
            message = format!("internal error (id {id})");
        }
        let body = ErrorBody {
            error: self.code,
            message,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            let v = match self.code {
                ErrorCode::MissingToken => "Bearer".to_string(),
                ErrorCode::InvalidCredentials => "Bearer error=\"invalid_request\"".to_string(),
                _ => format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    self.code.as_str()
                ),
            };
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_its_status_and_name() {
        use ErrorCode::*;
        let all = [
            (InvalidCredentials, 401),
            (MissingToken, 401),
            (InvalidToken, 401),
            (TokenExpired, 401),
            (TokenRevoked, 401),
            (RefreshTokenExpired, 401),
            (RefreshTokenReused, 401),
            (Forbidden, 403),
            (NotFound, 404),
            (Conflict, 409),
            (ValidationError, 400),
            (PayloadTooLarge, 413),
            (RateLimited, 429),
            (ServiceUnavailable, 503),
            (InternalError, 500),
        ];
        for (code, status) in all {
            assert_eq!(code.status().as_u16(), status);
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str());
        }
    }

    #[test]
    fn internal_detail_never_reaches_the_body() {
        let resp = Error::internal("password=hunter2 connection refused").into_response();
        assert_eq!(resp.status(), 500);
        let rendered = format!("{:?}", resp.headers());
        assert!(!rendered.contains("hunter2"));
    }
}
