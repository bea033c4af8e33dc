//! Signed-in sessions: what the session record holds, its two timeouts, and the CSRF token.
//!
//! tower-sessions keeps the record in the database and the id in an HttpOnly, SameSite=Strict
//! cookie, and ends it after `idle_timeout` without a request. The absolute limit is checked here,
//! from the sign-in time kept in the record, because the cookie library only knows one expiry.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::{Deserialize, Serialize};
use talos_dr_shared::sign_in::SignInMethod;
use talos_dr_shared::{Role, SessionInfo};
use tower_sessions::Session;

use super::{AuthError, UserStore};
use crate::clock::now_ms;
use crate::error::ApiError;

const SESSION_KEY: &str = "signed_in";
/// The session's idle deadline is pushed back at most this often (or every quarter of the idle
/// timeout, if shorter), so reading pages does not write the session record on every request.
const TOUCH_EVERY_MS: i64 = 60_000;

/// Session lifetimes and the cookie's Secure flag.
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// Set the cookie's Secure flag; needed whenever the console is reached over HTTPS.
    pub secure_cookies: bool,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 60 * 60),
            secure_cookies: false,
        }
    }
}

/// What the session record holds once someone has signed in.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SignedIn {
    username: String,
    csrf_token: String,
    login_at_ms: i64,
    last_seen_ms: i64,
    /// Records written before OIDC sign-in existed are local ones.
    #[serde(default)]
    via: SignInMethod,
    /// Roles mapped from the provider's groups at sign-in; `None` for local users, whose roles
    /// are read from the user database on every request.
    #[serde(default)]
    provider_roles: Option<Vec<Role>>,
}

/// The signed-in user of the current request, with their roles as the database has them now.
/// The authorization guard puts it into the request; handlers extract it.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub username: String,
    pub roles: Vec<Role>,
    pub csrf_token: String,
    pub expires_at_ms: i64,
}

impl CurrentUser {
    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            username: self.username.clone(),
            roles: self.roles.clone(),
            csrf_token: self.csrf_token.clone(),
            expires_at_ms: self.expires_at_ms,
        }
    }

    pub fn has_any(&self, needed: &[Role]) -> bool {
        needed
            .iter()
            .any(|n| self.roles.iter().any(|r| r.grants(*n)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or(ApiError::Auth(AuthError::NotSignedIn))
    }
}

fn new_csrf_token() -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Starts a session for `username`: a new session id (so an id planted before sign-in is
/// worthless), a new CSRF token.
pub async fn sign_in(
    session: &Session,
    settings: &SessionSettings,
    username: &str,
    roles: Vec<Role>,
) -> Result<CurrentUser, AuthError> {
    start_session(session, settings, username, roles, SignInMethod::Local).await
}

/// Starts a session for a user the OIDC provider vouched for, with the roles their groups map
/// to. Such users have no row in the user database.
pub async fn sign_in_external(
    session: &Session,
    settings: &SessionSettings,
    username: &str,
    roles: Vec<Role>,
    via: SignInMethod,
) -> Result<CurrentUser, AuthError> {
    start_session(session, settings, username, roles, via).await
}

async fn start_session(
    session: &Session,
    settings: &SessionSettings,
    username: &str,
    roles: Vec<Role>,
    via: SignInMethod,
) -> Result<CurrentUser, AuthError> {
    session.cycle_id().await?;
    session.clear().await;
    let now = now_ms();
    let record = SignedIn {
        username: username.to_string(),
        csrf_token: new_csrf_token(),
        login_at_ms: now,
        last_seen_ms: now,
        provider_roles: (via != SignInMethod::Local).then(|| roles.clone()),
        via,
    };
    session.insert(SESSION_KEY, &record).await?;
    Ok(CurrentUser {
        username: record.username,
        roles,
        csrf_token: record.csrf_token,
        expires_at_ms: now.saturating_add(millis(settings.absolute_timeout)),
    })
}

/// The session's user, or `NotSignedIn` when there is none, it passed its absolute deadline, or
/// the user lost every role (or was removed) since signing in.
pub async fn current_user(
    session: &Session,
    settings: &SessionSettings,
    users: &UserStore,
) -> Result<CurrentUser, AuthError> {
    let Some(mut record) = session.get::<SignedIn>(SESSION_KEY).await? else {
        return Err(AuthError::NotSignedIn);
    };
    let now = now_ms();
    let expires_at_ms = record
        .login_at_ms
        .saturating_add(millis(settings.absolute_timeout));
    if now >= expires_at_ms {
        session.flush().await?;
        return Err(AuthError::NotSignedIn);
    }
    let roles = match &record.provider_roles {
        Some(roles) => roles.clone(),
        None => users.roles(&record.username).await?,
    };
    if roles.is_empty() {
        session.flush().await?;
        return Err(AuthError::NotSignedIn);
    }
    let touch_every = TOUCH_EVERY_MS.min(millis(settings.idle_timeout) / 4);
    if now - record.last_seen_ms >= touch_every {
        record.last_seen_ms = now;
        session.insert(SESSION_KEY, &record).await?;
    }
    Ok(CurrentUser {
        username: record.username,
        roles,
        csrf_token: record.csrf_token,
        expires_at_ms,
    })
}

/// How the session's user signed in; `Local` when nobody is signed in.
pub async fn signed_in_with(session: &Session) -> Result<SignInMethod, AuthError> {
    Ok(session
        .get::<SignedIn>(SESSION_KEY)
        .await?
        .map(|record| record.via)
        .unwrap_or_default())
}

pub async fn sign_out(session: &Session) -> Result<(), AuthError> {
    session.flush().await?;
    Ok(())
}

/// Compares without stopping at the first difference, so timing tells nothing about the token.
pub fn tokens_match(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abd", "abc"));
        assert!(!tokens_match("ab", "abc"));
        assert_ne!(new_csrf_token(), new_csrf_token());
    }
}
