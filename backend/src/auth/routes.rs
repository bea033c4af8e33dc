//! Signing in and out: `POST`, `GET` and `DELETE /api/session`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use talos_dr_shared::sign_in::SignInMethod;
use talos_dr_shared::{LoginRequest, SessionResponse};
use tower_sessions::Session;

use super::oidc::OidcError;
use super::password::verify_password;
use super::session::{sign_in, sign_out, signed_in_with};
use super::{AuthError, CurrentUser};
use crate::audit::NewAuditEntry;
use crate::error::ApiResult;
use crate::json::AppJson;
use crate::state::AppState;

/// The client's address, when the server was started with connection info.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// `POST /api/session`: sign in with `{"username", "password"}`.
#[tracing::instrument(name = "create_session", skip_all, fields(username = %body.username))]
pub async fn create_session(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    session: Session,
    AppJson(body): AppJson<LoginRequest>,
) -> ApiResult<Response> {
    let storage = state.storage();
    let client_ip = client.map(|a| a.ip().to_string());
    let user_key = format!("user:{}", body.username);
    let mut keys = vec![user_key.clone()];
    if let Some(ip) = &client_ip {
        keys.push(format!("addr:{ip}"));
    }
    let audit = |action: &str, roles, outcome: String| NewAuditEntry {
        actor: body.username.clone(),
        roles,
        action: action.to_string(),
        cluster: None,
        target: None,
        parameters: BTreeMap::new(),
        outcome,
        client: client_ip.clone(),
    };
    // Checked before the password, so the answer tells nothing about the password.
    if let Some(oidc) = state.oidc()
        && !oidc.settings.local_sign_in_allowed(&body.username)
    {
        let refusal = OidcError::LocalSignInOff {
            provider: oidc.settings.provider_name.clone(),
        };
        storage
            .audit
            .record(audit(
                "login_refused",
                Vec::new(),
                "refused: local sign-in is limited to break-glass accounts".into(),
            ))
            .await;
        return Ok(refusal.into_response());
    }
    if let Err(wait) = state.limiter().check(&keys) {
        let refusal = AuthError::TooManyAttempts(wait);
        storage
            .audit
            .record(audit(
                "login_failed",
                Vec::new(),
                format!("refused: {refusal}"),
            ))
            .await;
        return Err(refusal.into());
    }
    let user = storage.users.find(&body.username).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let verified = verify_password(body.password.clone(), hash).await?;
    let user = match user {
        Some(user) if verified && !user.roles.is_empty() => user,
        _ => {
            state.limiter().record_failure(&keys);
            storage
                .audit
                .record(audit(
                    "login_failed",
                    Vec::new(),
                    "refused: wrong username or password".into(),
                ))
                .await;
            return Err(AuthError::BadCredentials.into());
        }
    };
    state.limiter().forget(&user_key);
    let current = sign_in(
        &session,
        &state.session_settings(),
        &user.username,
        user.roles.clone(),
    )
    .await?;
    storage
        .audit
        .record(audit("login", user.roles, "ok".into()))
        .await;
    Ok(Json(SessionResponse {
        session: current.info(),
        signed_in_with: SignInMethod::Local,
    })
    .into_response())
}

/// `GET /api/session`: who is signed in, and the CSRF token for state-changing calls.
#[tracing::instrument(name = "find_session", skip_all, fields(username = %user.username))]
pub async fn find_session(user: CurrentUser, session: Session) -> ApiResult<Json<SessionResponse>> {
    Ok(Json(SessionResponse {
        session: user.info(),
        signed_in_with: signed_in_with(&session).await?,
    }))
}

/// `DELETE /api/session`: sign out (the guard records it in the audit trail).
#[tracing::instrument(name = "delete_session", skip_all, fields(username = %user.username))]
pub async fn delete_session(user: CurrentUser, session: Session) -> ApiResult<StatusCode> {
    sign_out(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}
