//! Machine configuration backups: each control-plane node's active `v1alpha1` config, fetched
//! with the cluster's `os:admin` credentials and kept encrypted in the database (backups taken
//! before that, in `<data-dir>/machine-configs`).
//! Rebuilding a lost control plane needs these files, and they hold the cluster's secrets, so
//! only admins may take, list or download them.

pub mod api;
pub mod key;
mod store;

pub use key::{ConfigBackupKey, KEY_FLAG, KeyError, SealError};
pub use store::{MachineConfigBackup, MachineConfigStore};

/// Why a machine config route could not do what was asked. `Display` is worded for the console.
#[derive(Debug, thiserror::Error)]
pub enum MachineConfigError {
    #[error(
        "machine config backups need a key: start the console with {KEY_FLAG} (32 bytes, hex or base64)"
    )]
    NoKey,
    #[error(transparent)]
    Cluster(#[from] crate::clusters::ClusterError),
    #[error("cluster {cluster:?} has no machine config backup {id:?}")]
    NotFound { cluster: String, id: String },
    #[error("{0:?} is not a backup id")]
    BadId(String),
    #[error("cannot read the Talos credentials: {0}")]
    Credentials(String),
    #[error("no machine config could be fetched: {0}")]
    NothingFetched(String),
    #[error("backup {id}: {source}")]
    Seal { id: String, source: SealError },
    #[error("machine config store {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("machine config history: {0}")]
    Database(#[from] sqlx::Error),
}
