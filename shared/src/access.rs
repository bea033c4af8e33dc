//! Who is signed in to the console and what they may do: the session, the roles, the audit trail
//! as the browser sees them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a console user may do. A user may hold several roles. Every role may read cluster state;
/// the other capabilities are separate so that the person who asks for a destructive step is not
/// the one who approves it, unless they were given both roles on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything except secrets.
    Viewer,
    /// Takes snapshots, starts a recovery, requests destructive steps.
    Operator,
    /// Approves or denies requested steps.
    Approver,
    /// Manages users, clusters and settings.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Approver, Role::Admin];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Approver => "approver",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether holding `self` is enough for something that needs `needed`: reading (viewer) is
    /// part of every role; every other role stands alone.
    pub fn grants(&self, needed: Role) -> bool {
        needed == Role::Viewer || *self == needed
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /api/session`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// `GET /api/session` and the answer to a login: who is signed in, and the token every
/// state-changing request must carry in the `X-CSRF-Token` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub username: String,
    pub roles: Vec<Role>,
    pub csrf_token: String,
    /// When the session ends at the latest, whatever the activity (ms since the Unix epoch).
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionResponse {
    pub session: SessionInfo,
    /// Local password or the OIDC provider (absent from older consoles: local).
    #[serde(default)]
    pub signed_in_with: crate::sign_in::SignInMethod,
}

/// Name of the header that carries the session's CSRF token.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the trail, from 1, without gaps.
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub roles: Vec<Role>,
    /// What was done, e.g. `login`, `login_failed`, `logout`, `user_create`.
    pub action: String,
    pub cluster: Option<String>,
    /// What the action was about (a user, a node, a snapshot...).
    pub target: Option<String>,
    /// The request's parameters, secrets left out.
    pub parameters: BTreeMap<String, String>,
    /// `ok`, or why it was refused or failed.
    pub outcome: String,
    /// The client address the request came from, when known.
    pub client: Option<String>,
    /// SHA-256 (hex) of the previous entry; all zeros for the first one.
    pub prev_hash: String,
    /// SHA-256 (hex) of this entry's fields and `prev_hash`.
    pub hash: String,
}

/// A user as administrators see them (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub username: String,
    pub roles: Vec<Role>,
    pub created_at_ms: i64,
}

/// Data of the `viewers` event on a cluster's health stream: the users who have the cluster's
/// live health open, sorted, each once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewers {
    pub viewers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_reads_but_only_its_holder_acts() {
        for role in Role::ALL {
            assert!(role.grants(Role::Viewer));
        }
        assert!(!Role::Viewer.grants(Role::Operator));
        assert!(!Role::Admin.grants(Role::Approver));
        assert!(!Role::Operator.grants(Role::Approver));
        assert!(Role::Approver.grants(Role::Approver));
        assert_eq!(Role::parse("etcd"), None);
        assert_eq!(Role::parse("approver"), Some(Role::Approver));
    }
}
