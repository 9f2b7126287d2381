//! The one mapping from domain errors to HTTP responses outside `/oauth/*`: one status per code,
//! a `{"error", "message"}` body, an RFC 6750 challenge on 401s, `Retry-After` on 429s. Internal
//! errors reach the client as an opaque id; the detail goes only to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{Error, ErrorCode};

/// The HTTP status each code is always answered with.
pub fn status(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        InvalidCredentials | MissingToken | InvalidToken | TokenExpired | TokenRevoked
        | RefreshTokenExpired | RefreshTokenReused => StatusCode::UNAUTHORIZED,
        Forbidden | CsrfFailed => StatusCode::FORBIDDEN,
        NotFound => StatusCode::NOT_FOUND,
        Conflict => StatusCode::CONFLICT,
        ValidationError => StatusCode::BAD_REQUEST,
        PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        RateLimited => StatusCode::TOO_MANY_REQUESTS,
        RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        InternalError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The `WWW-Authenticate` challenge of a 401 (RFC 6750 section 3).
pub fn challenge(code: ErrorCode) -> Option<String> {
    match code {
        ErrorCode::MissingToken => Some("Bearer".into()),
        ErrorCode::InvalidCredentials => Some("Bearer error=\"invalid_request\"".into()),
        c if status(c) == StatusCode::UNAUTHORIZED => Some(format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\"",
            c.as_str()
        )),
        _ => None,
    }
}

/// The message the caller may see. An internal error's detail is logged under a fresh opaque
/// id and only the id is returned, tying a client's report to the log line.
pub fn public_message(e: &Error) -> String {
    match e.detail() {
        Some(detail) => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            tracing::error!(error_id = %id, "{detail}");
            format!("internal error (id {id})")
        }
        None => e.message.clone(),
    }
}

/// The JSON body of every error response outside `/oauth/*`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": "INVALID_TOKEN", "message": "the token is not valid"}))]
pub struct ErrorBody {
    /// One of the stable error codes.
    #[schema(value_type = ErrorCodeDoc)]
    pub error: ErrorCode,
    /// A human-readable explanation; never contains secrets.
    pub message: String,
}

/// Stable, greppable error codes of the HTTP API (SPEC section 4).
#[derive(ToSchema)]
#[schema(as = ErrorCode, rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(dead_code)] // documentation only: the wire values come from `crate::error::ErrorCode`
pub enum ErrorCodeDoc {
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
    CsrfFailed,
    RequestTimeout,
    ServiceUnavailable,
    InternalError,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = status(self.code);
        let body = ErrorBody {
            error: self.code,
            message: public_message(&self),
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(v) = challenge(self.code).and_then(|v| HeaderValue::from_str(&v).ok()) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
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
    fn every_code_has_one_status() {
        use ErrorCode::*;
        let table = [
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
            (CsrfFailed, 403),
            (RequestTimeout, 408),
            (ServiceUnavailable, 503),
            (InternalError, 500),
        ];
        assert_eq!(table.len(), ErrorCode::ALL.len());
        for (code, want) in table {
            assert_eq!(status(code).as_u16(), want, "{code:?}");
            assert_eq!(challenge(code).is_some(), want == 401, "{code:?}");
        }
    }

    #[test]
    fn the_documented_enum_lists_exactly_the_codes() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(ErrorCodeDoc::schema()).unwrap();
        let documented: Vec<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(documented, codes);
    }

    #[test]
    fn internal_detail_never_reaches_the_response() {
        let resp = Error::internal("password=hunter2 connection refused").into_response();
        assert_eq!(resp.status(), 500);
        assert!(!format!("{:?}", resp.headers()).contains("hunter2"));
        let msg = public_message(&Error::internal("hunter2"));
        assert!(msg.starts_with("internal error (id ") && !msg.contains("hunter2"));
    }
}
