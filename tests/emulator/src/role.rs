//! Talos API roles, as carried in a client certificate's Subject O= values.

use std::fmt;
use std::str::FromStr;

/// The roles a talosconfig of the emulated cluster can be issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Admin,
    Operator,
    Reader,
    EtcdBackup,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Reader, Role::EtcdBackup];

    /// The string Talos puts in the certificate (`pkg/machinery/role/role.go`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "os:admin",
            Role::Operator => "os:operator",
            Role::Reader => "os:reader",
            Role::EtcdBackup => "os:etcd:backup",
        }
    }

    /// Short name used in file and context names: `admin`, `operator`, `reader`, `etcd-backup`.
    pub fn short_name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Reader => "reader",
            Role::EtcdBackup => "etcd-backup",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?} (expected os:admin, os:operator, os:reader or os:etcd:backup)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s || role.short_name() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}
