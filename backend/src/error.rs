//! The one place where errors become HTTP responses.
//!
//! Each capability module has its own error enum, worded for the SRE; this module decides the
//! status code and the stable `code` string for each, and makes sure internal detail (I/O errors,
//! Talos status text) goes to the log and never into a response body.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use talos_dr_shared::ErrorBody;

use crate::audit::AuditError;
use crate::auth::AuthError;
use crate::clusters::ClusterError;
use crate::health::HealthError;
use crate::recovery::RecoveryError;
use crate::snapshots::api::SnapshotApiError;

/// Every error a handler can return.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Health(#[from] HealthError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotApiError),
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    /// The request itself is wrong; the message names the field.
    #[error("{0}")]
    BadRequest(String),
    #[error("send the request body as JSON, with Content-Type: application/json")]
    UnsupportedBody,
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
            Self::Auth(e) => auth_status(e),
            Self::Audit(AuditError::BadFilter(_)) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Audit(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Self::Snapshot(e) => snapshot_status(e),
            Self::Recovery(e) => e.status_and_code(),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::UnsupportedBody => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_body"),
            Self::RouteNotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    fn public_message(&self) -> String {
        if self.status_and_code().1 == "internal" {
            return "the console hit an internal error; the details are in its log".into();
        }
        match self {
            Self::Internal(_) => {
                "the console hit an internal error; the details are in its log".into()
            }
            other => other.to_string(),
        }
    }
}

fn auth_status(e: &AuthError) -> (StatusCode, &'static str) {
    match e {
        AuthError::BadCredentials => (StatusCode::UNAUTHORIZED, "bad_credentials"),
        AuthError::NotSignedIn => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        AuthError::RoleRequired(_) => (StatusCode::FORBIDDEN, "role_required"),
        AuthError::CsrfToken => (StatusCode::FORBIDDEN, "csrf_token"),
        AuthError::CrossOrigin => (StatusCode::FORBIDDEN, "cross_origin"),
        AuthError::TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
        AuthError::MetricsToken => (StatusCode::UNAUTHORIZED, "metrics_token"),
        AuthError::MetricsNotLocal => (StatusCode::FORBIDDEN, "metrics_not_local"),
        AuthError::BadUsername(_) | AuthError::WeakPassword(_) | AuthError::NoRoles => {
            (StatusCode::BAD_REQUEST, "bad_request")
        }
        AuthError::UserExists(_) => (StatusCode::CONFLICT, "user_exists"),
        AuthError::Hashing(_) | AuthError::Store(_) | AuthError::Session(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    }
}

fn snapshot_status(e: &SnapshotApiError) -> (StatusCode, &'static str) {
    match e {
        SnapshotApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "snapshot_not_found"),
        SnapshotApiError::NotStored(..) => (StatusCode::CONFLICT, "snapshot_not_stored"),
        SnapshotApiError::NoHealthyNode(_) => (StatusCode::CONFLICT, "no_healthy_node"),
        SnapshotApiError::UnknownNode { .. }
        | SnapshotApiError::BadPage
        | SnapshotApiError::BadId(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        SnapshotApiError::AttemptFailed { .. } => (StatusCode::BAD_GATEWAY, "snapshot_failed"),
        SnapshotApiError::UploadRefused { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "snapshot_refused")
        }
        SnapshotApiError::Store(_)
        | SnapshotApiError::History(_)
        | SnapshotApiError::Credentials(_)
        | SnapshotApiError::Inspector(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            // Logged here, inside the request's trace span, so the log line carries the route.
            tracing::error!(error = ?self, "request failed");
        }
        let mut response =
            (status, Json(ErrorBody::new(code, self.public_message()))).into_response();
        if let Self::Auth(AuthError::TooManyAttempts(seconds)) = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
        }
        if let Self::Auth(AuthError::MetricsToken) = &self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"talos-dr metrics\""),
            );
        }
        response
    }
}
