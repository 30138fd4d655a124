//! The error policy, and `AppError`, the error of everything a request calls.
//!
//! - **What a request reaches returns `AppResult`**: the handlers, and the
//!   functions they call that can refuse the request: the domains' stores
//!   (`store/runs.rs`, `environments/store.rs`, ...), the catalog's lookups,
//!   the validating types (`Username`, `EnvironmentId`). A case a person can
//!   fix is a 4xx variant whose message says what to do (`Invalid`: 422,
//!   `NotFound`, `Busy`/`Conflict`: 409, `Unauthorized`, `Forbidden`,
//!   `TooManyRequests`: 429); a constraint that carries a rule is mapped to
//!   its 4xx by the store that knows it (`one_run_per_environment` → `Busy`).
//! - **What no request waits on returns `anyhow::Result`** with a
//!   `.context(..)` per step: the executor, the engine, dependency builds,
//!   start-up, the background passes. Their errors are logged (or end a run
//!   as `error` with a reason), never shown as a page.
//! - **Everything else is `Internal`**: `sqlx::Error` and `anyhow::Error`
//!   convert into it with `?`; it is logged once, with its context chain,
//!   where it becomes a response (`public_message`), and shown as an opaque
//!   500. Its text never reaches a client.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Busy { message: String, holder: i64 },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// 429: what is limited and when to come back.
    #[error("{0}")]
    TooManyRequests(String),
    /// 413: over a size cap (named in the message).
    #[error("{0}")]
    TooLarge(String),
    /// 408: a request body that did not arrive in time (the bound named).
    #[error("{0}")]
    TimedOut(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

/// The body of every 4xx/5xx answer of the JSON API (as the OpenAPI
/// document describes it; `IntoResponse` below writes it).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do about it.
    pub error: String,
    /// On a 409 for a busy environment: the run that holds it.
    pub holder_run_id: Option<i64>,
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Busy { .. } | AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text shown to a person: the message for domain errors, nothing
    /// revealing for internal ones.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "request failed");
                "something went wrong on the server; it has been logged".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        AppError::Internal(anyhow::Error::new(err).context("database query"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({ "error": self.public_message() });
        if let AppError::Busy { holder, .. } = &self {
            body["holder_run_id"] = json!(holder);
        }
        (status, Json(body)).into_response()
    }
}
