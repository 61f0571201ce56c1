//! Errors as JSON problem objects (RFC 9457): one clear line in `detail`, a status that
//! says whose fault it was (4xx for bad input, unknown things and conflicts, 503 when the
//! store cannot be reached, 500 only for what is wrangle's own failure). This module owns
//! the mapping from library errors to statuses, not the errors themselves.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use wrangle::StoreError;
use wrangle::control::ControlError;

/// An error answer: `application/problem+json`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, in one line.
    pub detail: String,
}

impl Problem {
    /// A problem with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 404: nothing of that name or id.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, detail)
    }

    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Problem {
        let status = match &err {
            StoreError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            StoreError::TaskNotFound(_)
            | StoreError::JobNotFound(_)
            | StoreError::CommandNotFound(_) => StatusCode::NOT_FOUND,
            StoreError::InvalidTransition { .. } | StoreError::JobExists(_) => StatusCode::CONFLICT,
            StoreError::Unavailable(_) | StoreError::Connect(_) | StoreError::NoStore(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(error = %err, "store call failed");
        }
        Problem::new(status, one_line(&err.to_string()))
    }
}

impl From<ControlError> for Problem {
    fn from(err: ControlError) -> Problem {
        match err {
            ControlError::Store(err) => err.into(),
            ControlError::UnknownWorker(_) => Problem::not_found(err.to_string()),
            ControlError::TimedOut { .. } => {
                Problem::new(StatusCode::GATEWAY_TIMEOUT, err.to_string())
            }
        }
    }
}

/// The first line of `text`: a detail is one line.
fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// The answer for a route that does not exist.
pub(crate) async fn not_found() -> Problem {
    Problem::not_found("no such route (see /api/openapi.json)")
}
