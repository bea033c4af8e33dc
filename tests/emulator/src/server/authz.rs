//! The Talos role table (machined `rules` map) and the roles a caller presents.

use tonic::{Request, Status};

use crate::node::RecoveryCall;

const ADMIN: &str = "os:admin";
const OPERATOR: &str = "os:operator";
const READER: &str = "os:reader";
const ETCD_BACKUP: &str = "os:etcd:backup";

/// Every RPC the emulator serves, keyed by what the authorizer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    Version,
    ServiceList,
    EtcdMemberList,
    EtcdStatus,
    EtcdAlarmList,
    EtcdAlarmDisarm,
    EtcdDefragment,
    EtcdSnapshot,
    EtcdRecover,
    EtcdRemoveMemberById,
    EtcdLeaveCluster,
    EtcdForfeitLeadership,
    Bootstrap,
    Reset,
    Reboot,
    ApplyConfiguration,
    Copy,
    Read,
    Dmesg,
    Events,
    GenerateClientConfiguration,
    CosiRead,
    CosiWrite,
}

impl Rpc {
    /// The recovery call this RPC is counted as on the target node, if any.
    pub fn recovery_call(self) -> Option<RecoveryCall> {
        match self {
            Rpc::Reset => Some(RecoveryCall::Reset),
            Rpc::Bootstrap => Some(RecoveryCall::Bootstrap),
            Rpc::EtcdRecover => Some(RecoveryCall::EtcdRecover),
            Rpc::ApplyConfiguration => Some(RecoveryCall::ApplyConfiguration),
            Rpc::Reboot => Some(RecoveryCall::Reboot),
            _ => None,
        }
    }

    /// Roles of which the caller needs any one (spec §1.1, Talos `main`).
    pub fn allowed_roles(self) -> &'static [&'static str] {
        match self {
            Rpc::Version | Rpc::ServiceList | Rpc::Dmesg | Rpc::Events | Rpc::CosiRead => {
                &[ADMIN, OPERATOR, READER]
            }
            Rpc::EtcdMemberList | Rpc::EtcdStatus | Rpc::EtcdAlarmList => {
                &[ADMIN, OPERATOR, READER, ETCD_BACKUP]
            }
            Rpc::EtcdAlarmDisarm | Rpc::EtcdDefragment | Rpc::Reboot => &[ADMIN, OPERATOR],
            Rpc::EtcdSnapshot => &[ADMIN, OPERATOR, ETCD_BACKUP],
            // ApplyConfiguration's rule lists reader too, but outside maintenance mode
            // the handler demands admin, so the effective set is admin only.
            Rpc::EtcdRecover
            | Rpc::EtcdRemoveMemberById
            | Rpc::EtcdLeaveCluster
            | Rpc::EtcdForfeitLeadership
            | Rpc::Bootstrap
            | Rpc::Reset
            | Rpc::ApplyConfiguration
            | Rpc::Copy
            | Rpc::Read
            | Rpc::GenerateClientConfiguration
            | Rpc::CosiWrite => &[ADMIN],
        }
    }
}

/// COSI types whose definition is marked Sensitive: reading them needs os:admin.
const SENSITIVE_TYPES: &[&str] = &["MachineConfigs.config.talos.dev"];

pub fn is_sensitive_type(resource_type: &str) -> bool {
    SENSITIVE_TYPES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(resource_type))
}

/// The caller's roles: every non-empty Subject O= value of the leaf client certificate.
pub fn caller_roles<T>(request: &Request<T>) -> Vec<String> {
    let Some(certs) = request.peer_certs() else {
        return Vec::new();
    };
    let Some(leaf) = certs.first() else {
        return Vec::new();
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
        return Vec::new();
    };
    cert.subject()
        .iter_organization()
        .filter_map(|attr| attr.as_str().ok())
        .filter(|role| !role.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn not_authorized() -> Status {
    Status::permission_denied("not authorized")
}

/// Fails with Talos' `PermissionDenied "not authorized"` unless a role matches.
pub fn authorize(roles: &[String], rpc: Rpc) -> Result<(), Status> {
    let allowed = rpc.allowed_roles();
    if roles.iter().any(|role| allowed.contains(&role.as_str())) {
        Ok(())
    } else {
        Err(not_authorized())
    }
}

/// The extra check COSI reads go through (`internal/app/resources/access.go`).
pub fn authorize_resource_type(roles: &[String], resource_type: &str) -> Result<(), Status> {
    if is_sensitive_type(resource_type) && !roles.iter().any(|role| role == ADMIN) {
        return Err(not_authorized());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn etcd_backup_may_snapshot_but_not_read_version() {
        let backup = roles(&[ETCD_BACKUP]);
        assert!(authorize(&backup, Rpc::EtcdSnapshot).is_ok());
        assert!(authorize(&backup, Rpc::EtcdStatus).is_ok());
        let denied = authorize(&backup, Rpc::Version).expect_err("denied");
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert_eq!(denied.message(), "not authorized");
    }

    #[test]
    fn reader_cannot_run_destructive_calls() {
        let reader = roles(&[READER]);
        for rpc in [
            Rpc::EtcdSnapshot,
            Rpc::Reset,
            Rpc::Bootstrap,
            Rpc::EtcdRecover,
            Rpc::ApplyConfiguration,
        ] {
            assert!(authorize(&reader, rpc).is_err(), "{rpc:?}");
        }
        assert!(authorize(&reader, Rpc::EtcdMemberList).is_ok());
    }

    #[test]
    fn unknown_roles_match_nothing() {
        assert!(authorize(&roles(&["os:admin2", ""]), Rpc::Version).is_err());
    }

    #[test]
    fn machine_config_needs_admin() {
        assert!(
            authorize_resource_type(&roles(&[READER]), "MachineConfigs.config.talos.dev").is_err()
        );
        assert!(
            authorize_resource_type(&roles(&[ADMIN]), "MachineConfigs.config.talos.dev").is_ok()
        );
        assert!(
            authorize_resource_type(&roles(&[READER]), "MachineTypes.config.talos.dev").is_ok()
        );
    }
}
