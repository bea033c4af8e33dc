//! The one place where errors become HTTP responses.
//!
//! Each capability module has its own error enum, worded for the SRE; this module decides the
//! status code and the stable `code` string for each, and makes sure internal detail (I/O errors,
//! Talos status text) goes to the log and never into a response body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use talos_dr_shared::ErrorBody;

use crate::clusters::ClusterError;
use crate::health::HealthError;

/// Every error a handler can return.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Health(#[from] HealthError),
    #[error("no API route for {0}")]
    RouteNotFound(String),
    #[error("this route does not accept that method")]
    MethodNotAllowed,
    /// Something broke inside the console; the source is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Cluster(ClusterError::NotFound(_)) => {
                (StatusCode::NOT_FOUND, "cluster_not_found")
            }
            Self::Health(HealthError::NotPolledYet(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "health_not_ready")
            }
            Self::RouteNotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => {
                "the console hit an internal error; the details are in its log".into()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            // Logged here, inside the request's trace span, so the log line carries the route.
            tracing::error!(error = ?self, "request failed");
        }
        (status, Json(ErrorBody::new(code, self.public_message()))).into_response()
    }
}
