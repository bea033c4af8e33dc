//! Signing in and out, and finding out who is signed in.

use gloo_net::http::Request;
use talos_dr_shared::sign_in::SignInOptions;
use talos_dr_shared::{LoginRequest, SessionInfo, SessionResponse};

use super::{ApiError, CSRF_TOKEN, error_from, get_json, remember, with_csrf};

/// `GET /api/session`: who is signed in; `None` when nobody is (or the session expired).
pub async fn find_session() -> Result<Option<SessionInfo>, ApiError> {
    match get_json::<SessionResponse>("/api/session", "a session").await {
        Ok(reply) => {
            remember(&reply.session);
            Ok(Some(reply.session))
        }
        Err(ApiError::Console { status: 401, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `POST /api/session`: signs in. A wrong password comes back as `ApiError::Console` with the
/// console's message (the same for an unknown user).
pub async fn create_session(username: &str, password: &str) -> Result<SessionInfo, ApiError> {
    let body = LoginRequest {
        username: username.to_string(),
        password: password.to_string(),
    };
    // Not `post_json`: a refused sign-in is a 401 that must not count as a lost session.
    let response = Request::post("/api/session")
        .header("Accept", "application/json")
        .json(&body)
        .map_err(|e| ApiError::Unreachable(e.to_string()))?
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if !response.ok() {
        return Err(error_from(response).await);
    }
    let reply: SessionResponse = response.json().await.map_err(|e| ApiError::Malformed {
        what: "a session",
        detail: e.to_string(),
    })?;
    remember(&reply.session);
    Ok(reply.session)
}

/// `DELETE /api/session`: signs out.
pub async fn delete_session() -> Result<(), ApiError> {
    let response = with_csrf(Request::delete("/api/session"))
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    CSRF_TOKEN.with(|t| t.borrow_mut().take());
    // Already signed out (401) is what was asked for.
    if response.ok() || response.status() == 401 {
        Ok(())
    } else {
        Err(error_from(response).await)
    }
}

/// `GET /api/auth/providers`: whether the console offers an OIDC provider, and who may use a
/// local password.
/// Asked by the sign-in page itself, so its answer never counts as "the session is gone" (which
/// would show the sign-in page again, and ask again).
pub async fn find_sign_in_options() -> Result<SignInOptions, ApiError> {
    let response = Request::get("/api/auth/providers")
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if !response.ok() {
        return Err(error_from(response).await);
    }
    response
        .json::<SignInOptions>()
        .await
        .map_err(|e| ApiError::Malformed {
            what: "the sign-in options",
            detail: e.to_string(),
        })
}
