//! One talosconfig per Talos role and cluster, so each capability uses the least privilege it
//! needs: the health poller reads with `os:reader`, snapshots use `os:etcd:backup`, recovery
//! steps `os:admin`. Credentials stay on the server; nothing here is ever serialized.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::TalosContext;

/// The Talos API roles the console has use for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TalosRole {
    /// `os:reader`: health and other reads.
    Reader,
    /// `os:etcd:backup`: etcd snapshots.
    EtcdBackup,
    /// `os:admin`: recovery steps (reset, bootstrap, etcd recover).
    Admin,
}

impl TalosRole {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reader" => Some(Self::Reader),
            "etcd_backup" => Some(Self::EtcdBackup),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Reader => "reader",
            Self::EtcdBackup => "etcd_backup",
            Self::Admin => "admin",
        }
    }
}

/// A cluster's loaded talosconfig contexts, by Talos role.
#[derive(Clone, Default)]
pub struct ClusterCredentials {
    by_role: BTreeMap<TalosRole, TalosContext>,
    /// The cluster's single `talosconfig`, used for any role without its own.
    fallback: Option<TalosContext>,
}

impl fmt::Debug for ClusterCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterCredentials")
            .field("roles", &self.by_role.keys().collect::<Vec<_>>())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl ClusterCredentials {
    pub fn new(fallback: Option<TalosContext>, by_role: BTreeMap<TalosRole, TalosContext>) -> Self {
        Self { by_role, fallback }
    }

    /// The context to use for `role`: its own talosconfig, else the cluster's single one.
    pub fn for_role(&self, role: TalosRole) -> Option<&TalosContext> {
        self.by_role.get(&role).or(self.fallback.as_ref())
    }
}
