//! API errors: every one is JSON that says what is wrong and where, with a status a
//! client can act on. Nothing the client sends produces a 500.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::api::{ErrorBody, ErrorResponse};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    /// A stable, machine-readable reason, e.g. `missing_variable`.
    pub code: &'static str,
    pub message: String,
    /// Where in the request the problem is, as a JSON pointer (`/observations/3/time`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            location: None,
        }
    }

    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    /// 400: the request is not well-formed (JSON syntax, shape, types, missing fields).
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422: well-formed, but the values cannot be used (implausible, not hourly, too few).
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            error: ErrorBody {
                status: self.status.as_u16(),
                code: self.code.to_owned(),
                message: self.message,
                location: self.location,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(l) => write!(f, "{} ({}) at {l}", self.message, self.code),
            None => write!(f, "{} ({})", self.message, self.code),
        }
    }
}
