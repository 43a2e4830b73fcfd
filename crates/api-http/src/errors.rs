//! Every failure as RFC 9457 `application/problem+json` (SPEC §5), in one place.
//!
//! The request id comes from the task-local set by the request-context middleware, so
//! every error body carries it, including extractor rejections.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::ports::StoreError;
use domain::Error;
use serde::Serialize;
use utoipa::ToSchema;

tokio::task_local! {
    /// The id of the request being handled.
    pub static REQUEST_ID: String;
}

/// The current request's id (empty outside a request).
pub fn request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// An HTTP error: status, SPEC §5 code, a human detail, and for 403 the decision reason.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub reason: Option<&'static str>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            reason: None,
            retry_after: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid bearer token is required",
        )
    }

    /// 404 `not_found` for unknown routes.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    /// 429 `rate_limited` with the seconds to wait.
    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many attempts; retry later",
            )
        }
    }

    /// 503 `overloaded` with the seconds to wait: a bounded queue is full, or the
    /// request ran past its deadline (SPEC §5 has no other code for either).
    pub fn overloaded(retry_after: u64, detail: impl Into<String>) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", detail)
        }
    }

    /// 500 `internal`: a bug (a handler panicked); the body shows nothing of it.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }
}

/// The HTTP status each of the domain's problem codes is reported with (SPEC §5). The
/// match is exhaustive, so a new domain error cannot reach a client without a status.
pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::Format(_)
        | Error::InvalidRequest(_)
        | Error::UnknownScope(_)
        | Error::UnknownRole(_)
        | Error::UnknownProfileKey(_)
        | Error::InvalidProfileValue(_)
        | Error::ScopeNotAssignable(_)
        | Error::ScopeNotEnabled(_)
        | Error::InvalidCursor
        | Error::ScimInvalid { .. } => StatusCode::BAD_REQUEST,
        Error::Unauthenticated | Error::InvalidCredentials | Error::InvalidTotp => {
            StatusCode::UNAUTHORIZED
        }
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::TenantNotFound | Error::MemberNotFound | Error::UserNotFound | Error::NotFound => {
            StatusCode::NOT_FOUND
        }
        Error::TenantExists
        | Error::MemberExists
        | Error::EmailTaken
        | Error::ScopeExists
        | Error::LastTenantAdmin
        | Error::LastPlatformRoot
        | Error::ScimConflict(_) => StatusCode::CONFLICT,
        Error::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let status = status_of(&error);
        match &error {
            Error::Store(store) => {
                // Logged once here; the client sees no internals.
                tracing::error!(error = %store, "store failure");
                let (status, detail) = match store {
                    StoreError::Conflict => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the request conflicted with another; retry it",
                    ),
                    _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
                };
                Self::new(status, "internal", detail)
            }
            Error::RateLimited { retry_after_secs } => Self::rate_limited(*retry_after_secs),
            Error::Overloaded { retry_after_secs } => Self {
                status,
                ..Self::overloaded(*retry_after_secs, error.to_string())
            },
            Error::Forbidden(reason) => Self {
                reason: Some(reason.as_str()),
                ..Self::new(status, "forbidden", error.to_string())
            },
            // SCIM refusals carry their `scimType` as their code (only SCIM routes
            // produce them, and those answer SCIM error bodies).
            Error::ScimInvalid { scim_type, .. } => Self::new(status, scim_type, error.to_string()),
            Error::ScimConflict(_) => Self::new(status, "uniqueness", error.to_string()),
            _ => Self::new(status, error.code(), error.to_string()),
        }
    }
}

impl From<domain::ids::FormatError> for ApiError {
    fn from(error: domain::ids::FormatError) -> Self {
        Error::Format(error).into()
    }
}

/// An RFC 9457 problem (SPEC §5), the body of every error.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(format = "uri", example = "urn:user-engine:problem:tenant_not_found")]
    pub problem_type: String,
    #[schema(example = "Not Found")]
    pub title: &'static str,
    #[schema(example = 404)]
    pub status: u16,
    /// The machine-readable code of SPEC §5.
    #[schema(example = "tenant_not_found")]
    pub code: &'static str,
    pub detail: String,
    pub request_id: String,
    /// On 403 only: the decision reason (e.g. `platform_root_required`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub reason: Option<&'static str>,
}

impl From<&ApiError> for Problem {
    fn from(error: &ApiError) -> Self {
        Self {
            problem_type: format!("urn:user-engine:problem:{}", error.code),
            title: error.title(),
            status: error.status.as_u16(),
            code: error.code,
            detail: error.detail.clone(),
            request_id: request_id(),
            reason: error.reason,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A struct of strings and numbers always serializes; the fallback keeps this
        // total anyway.
        let body = serde_json::to_string(&Problem::from(&self)).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        // RFC 6750 §3: every 401 names the scheme the client should authenticate with.
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// A handler's result.
pub type ApiResult<T> = Result<T, ApiError>;
