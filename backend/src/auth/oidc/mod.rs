//! Signing in through an OpenID Connect provider: authorization code flow with PKCE, state and
//! nonce checked, the ID token verified against the provider's published keys, and the
//! provider's groups mapped to talos-dr roles. A user in no mapped group gets no access.
//!
//! The session this creates is the same kind a local sign-in creates; its roles are those mapped
//! at sign-in, kept for the session's life. Local passwords can be limited to break-glass
//! accounts once a provider is configured.

pub mod pending;
pub mod provider;
pub mod routes;
pub mod settings;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use talos_dr_shared::ErrorBody;

pub use provider::{Discovery, OidcProvider, TokenResponse, VerifiedIdToken};
pub use settings::{OidcArgs, OidcConfigError, OidcFileSection, OidcSettings};

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// At start: the console does not run with a provider it cannot reach.
    #[error("OIDC issuer {issuer}: discovery failed: {problem}")]
    Discovery { issuer: String, problem: String },
    /// The provider could not be asked, or answered with an error.
    #[error("OIDC provider: {0}")]
    Provider(String),
    /// The ID token (or userinfo) did not pass a check.
    #[error("ID token refused: {0}")]
    InvalidToken(String),
    #[error("OIDC sign-in is not configured on this console")]
    NotConfigured,
    /// Local passwords are limited to break-glass accounts.
    #[error(
        "local sign-in is limited to break-glass accounts here: use \"Sign in with {provider}\""
    )]
    LocalSignInOff { provider: String },
}

impl OidcError {
    fn discovery(issuer: &str, problem: impl Into<String>) -> Self {
        Self::Discovery {
            issuer: issuer.to_string(),
            problem: problem.into(),
        }
    }
}

impl IntoResponse for OidcError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            // Not 404: the route exists; this console just has no provider configured.
            Self::NotConfigured => (StatusCode::CONFLICT, "oidc_not_configured"),
            Self::LocalSignInOff { .. } => (StatusCode::FORBIDDEN, "local_sign_in_off"),
            Self::InvalidToken(_) => (StatusCode::UNAUTHORIZED, "oidc_refused"),
            Self::Discovery { .. } | Self::Provider(_) => {
                (StatusCode::BAD_GATEWAY, "oidc_provider")
            }
        };
        let message = match &self {
            Self::NotConfigured | Self::LocalSignInOff { .. } => self.to_string(),
            // The detail goes to the log; the browser learns only that the provider failed.
            _ => {
                tracing::warn!(error = %self, "OIDC sign-in failed");
                "the identity provider could not be used; try again later".to_string()
            }
        };
        (status, Json(ErrorBody::new(code, message))).into_response()
    }
}
