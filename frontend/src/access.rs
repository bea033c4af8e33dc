//! What the signed-in user may see and do, by role. The console enforces every rule itself;
//! this only keeps the page from offering what would be refused.

use talos_dr_shared::{Role, SessionInfo};

/// Whether the session holds a role that grants `needed` (every role reads).
pub fn can(session: &SessionInfo, needed: Role) -> bool {
    session.roles.iter().any(|r| r.grants(needed))
}

/// Whether the session may read the audit trail (approvers and administrators).
pub fn can_read_audit(session: &SessionInfo) -> bool {
    can(session, Role::Approver) || can(session, Role::Admin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(roles: &[Role]) -> SessionInfo {
        SessionInfo {
            username: "someone".into(),
            roles: roles.to_vec(),
            csrf_token: String::new(),
            expires_at_ms: 0,
        }
    }

    #[test]
    fn roles_decide_what_is_offered() {
        let viewer = session(&[Role::Viewer]);
        assert!(can(&viewer, Role::Viewer));
        assert!(!can(&viewer, Role::Admin));
        assert!(!can_read_audit(&viewer));
        assert!(!can_read_audit(&session(&[Role::Operator])));
        assert!(can_read_audit(&session(&[Role::Approver])));
        let admin = session(&[Role::Admin]);
        assert!(can_read_audit(&admin));
        assert!(can(&admin, Role::Admin));
        assert!(!can(&admin, Role::Operator));
    }
}
