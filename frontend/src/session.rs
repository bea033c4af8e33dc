//! Who is signed in, for the whole app: checked once at start, set by the sign-in page, cleared
//! by signing out or by any call that finds the session gone.

use leptos::prelude::*;
use talos_dr_shared::SessionInfo;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStatus {
    /// The first `GET /api/session` has not answered yet.
    Checking,
    SignedOut,
    SignedIn(SessionInfo),
}

/// The app-wide session signal, provided as context by the app.
#[derive(Debug, Clone, Copy)]
pub struct SessionState(pub RwSignal<SessionStatus>);

impl SessionState {
    pub fn get() -> Self {
        expect_context::<SessionState>()
    }

    pub fn username(&self) -> Option<String> {
        self.0.with_untracked(|s| match s {
            SessionStatus::SignedIn(info) => Some(info.username.clone()),
            _ => None,
        })
    }
}

/// The sign-in page's address, remembering where to come back to.
pub fn login_path(current: &str) -> String {
    if current.is_empty() || current == "/" || current.starts_with("/login") {
        "/login".to_string()
    } else {
        format!(
            "/login?next={}",
            String::from(js_sys::encode_uri_component(current))
        )
    }
}

/// Where to go after signing in: the `next` the sign-in page was given, if it is a path of this
/// console (never another site: `//host` or `https://...` are refused), else the start page.
pub fn next_after_sign_in(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.starts_with("/login") =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(next_after_sign_in(Some("/clusters/prod")), "/clusters/prod");
        assert_eq!(next_after_sign_in(None), "/");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "/login?next=/x",
            "clusters",
        ] {
            assert_eq!(next_after_sign_in(Some(bad)), "/", "{bad}");
        }
    }
}
