//! Who may use the console: local users with argon2id passwords, roles, cookie sessions, CSRF
//! defence, and the one authorization check every route goes through (`guard`).

pub mod guard;
pub mod limiter;
pub mod oidc;
pub mod password;
pub mod routes;
pub mod session;
pub mod store;
pub mod users;

use talos_dr_shared::Role;

pub use guard::{Access, guard};
pub use limiter::LoginLimiter;
pub use session::{CurrentUser, SessionSettings};
pub use store::{StoredUser, UserStore};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Deliberately the same for an unknown user and a wrong password.
    #[error("wrong username or password")]
    BadCredentials,
    #[error("not signed in, or the session has expired: sign in again")]
    NotSignedIn,
    #[error("this needs the {} role", roles_text(.0))]
    RoleRequired(Vec<Role>),
    #[error("missing or wrong X-CSRF-Token header: reload the page and try again")]
    CsrfToken,
    #[error("request refused: it does not come from this console's own pages (Origin/Referer)")]
    CrossOrigin,
    #[error("too many failed sign-ins; try again in {0} seconds")]
    TooManyAttempts(u64),
    #[error("metrics need the bearer token given with --metrics-token")]
    MetricsToken,
    #[error("metrics are served to local scrapers only unless --metrics-token is set")]
    MetricsNotLocal,
    #[error(
        "username {0:?}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    BadUsername(String),
    #[error("a password needs at least {0} characters")]
    WeakPassword(usize),
    #[error("a user needs at least one role: viewer, operator, approver or admin")]
    NoRoles,
    #[error("a user named {0:?} already exists")]
    UserExists(String),
    #[error("cannot hash the password: {0}")]
    Hashing(String),
    #[error("user database: {0}")]
    Store(#[from] sqlx::Error),
    #[error("session store: {0}")]
    Session(#[from] tower_sessions::session::Error),
}

fn roles_text(roles: &[Role]) -> String {
    let names: Vec<&str> = roles.iter().map(Role::as_str).collect();
    match names.as_slice() {
        [] => "right".to_string(),
        [one] => (*one).to_string(),
        many => format!(
            "{} or {}",
            many[..many.len() - 1].join(", "),
            many[many.len() - 1]
        ),
    }
}
