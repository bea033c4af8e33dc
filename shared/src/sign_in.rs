//! How users may sign in: local passwords, an OpenID Connect provider, or both. The login page
//! asks `GET /api/auth/providers` and shows only what the console accepts.

use serde::{Deserialize, Serialize};

/// Who may sign in with a local username and password.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalSignIn {
    /// Every local account (the only way in when no OIDC provider is configured).
    #[default]
    Everyone,
    /// Only the configured break-glass accounts; everyone else signs in through the provider.
    BreakGlass,
}

/// `GET /api/auth/providers`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInOptions {
    /// The OpenID Connect provider, when one is configured.
    pub oidc: Option<OidcSignInOption>,
    pub local: LocalSignIn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcSignInOption {
    /// Shown on the button: "Sign in with <provider_name>".
    pub provider_name: String,
    /// Where the browser goes to start; append `?next=<path>` to come back to a page.
    pub login_url: String,
}

/// How the current session was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum SignInMethod {
    /// Username and password of a local account.
    #[default]
    Local,
    /// Through the OpenID Connect provider; roles come from the provider's groups.
    Oidc { provider: String },
}

/// Why an OIDC sign-in ended back on the login page (`/login?oidc_error=<code>`). Codes, not
/// text, travel in the URL so that nobody can put words on the console's login page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OidcRefusal {
    /// The provider knows the user, but none of their groups maps to a talos-dr role.
    NoRole,
    /// The sign-in took too long, or was started in another browser: start again.
    Expired,
    /// The provider reported an error or refused (for example the user cancelled).
    Provider,
    /// The provider's answer did not pass the checks (token, signature, state).
    Invalid,
}

impl OidcRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoRole => "no_role",
            Self::Expired => "expired",
            Self::Provider => "provider",
            Self::Invalid => "invalid",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        [Self::NoRole, Self::Expired, Self::Provider, Self::Invalid]
            .into_iter()
            .find(|r| r.code() == code)
    }

    /// The sentence the login page shows.
    pub fn message(&self) -> &'static str {
        match self {
            Self::NoRole => {
                "You signed in at the identity provider, but none of your groups gives access to \
                 talos-dr. Ask an administrator to map one of your groups to a role."
            }
            Self::Expired => {
                "The sign-in took too long or was started elsewhere. Please try again."
            }
            Self::Provider => "The identity provider did not sign you in. Please try again.",
            Self::Invalid => {
                "The identity provider's answer could not be verified, so nobody was signed in."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_codes_round_trip() {
        for r in [
            OidcRefusal::NoRole,
            OidcRefusal::Expired,
            OidcRefusal::Provider,
            OidcRefusal::Invalid,
        ] {
            assert_eq!(OidcRefusal::parse(r.code()), Some(r));
        }
        assert_eq!(OidcRefusal::parse("<script>"), None);
    }

    #[test]
    fn sign_in_method_wire_form() {
        let oidc = SignInMethod::Oidc {
            provider: "Corp SSO".into(),
        };
        let json = serde_json::to_string(&oidc).expect("serializes");
        assert_eq!(json, r#"{"method":"oidc","provider":"Corp SSO"}"#);
        assert_eq!(
            serde_json::to_string(&SignInMethod::Local).expect("serializes"),
            r#"{"method":"local"}"#
        );
    }
}
