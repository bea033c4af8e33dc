//! Snapshot route errors, and looking up history entries named in a URL.

use super::history::{HistoryError, HistoryRow};
use super::store::{SnapshotId, SnapshotKey, StoreError};
use crate::state::AppState;

/// Why a snapshot route could not do what was asked. `Display` is worded for the console.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotApiError {
    #[error("cluster {cluster:?} has no snapshot {id:?}")]
    NotFound { cluster: String, id: String },
    #[error("snapshot {0} is a failed attempt: there is no file to {1}")]
    NotStored(String, &'static str),
    #[error("no healthy control-plane node to take a snapshot from: {0}; pick a node")]
    NoHealthyNode(String),
    #[error("node {node:?} is not a control-plane node of cluster {cluster:?}")]
    UnknownNode { cluster: String, node: String },
    /// The attempt is recorded as failed; the reason is the inspector's or the node's.
    #[error("snapshot {id} failed: {reason}")]
    AttemptFailed { id: String, reason: String },
    /// An uploaded file was not a restorable snapshot; recorded as a failed upload.
    #[error("upload {id} refused: {reason}")]
    UploadRefused { id: String, reason: String },
    #[error("page must be a whole number from 0")]
    BadPage,
    #[error("{0:?} is not a snapshot id: ids are letters, digits, '-', '_' and '.'")]
    BadId(String),
    #[error("snapshot store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("cannot read the Talos credentials: {0}")]
    Credentials(String),
    #[error("cannot compare the snapshots: {0}")]
    Inspector(String),
}

/// Ids in URLs are checked before any lookup, so odd text never reaches a query or a path.
pub fn check_id(id: &str) -> Result<(), SnapshotApiError> {
    SnapshotId::parse(id)
        .map(|_| ())
        .map_err(|_| SnapshotApiError::BadId(id.to_string()))
}

/// Looks up an entry that has a stored file.
pub async fn stored_row(
    state: &AppState,
    cluster: &str,
    id: &str,
    purpose: &'static str,
) -> Result<(HistoryRow, SnapshotKey), SnapshotApiError> {
    check_id(id)?;
    let not_found = || SnapshotApiError::NotFound {
        cluster: cluster.to_string(),
        id: id.to_string(),
    };
    let row = state
        .snapshots()
        .history
        .find(cluster, id)
        .await?
        .ok_or_else(not_found)?;
    let key = row
        .object_key
        .as_deref()
        .ok_or_else(|| SnapshotApiError::NotStored(id.to_string(), purpose))
        .and_then(|k| SnapshotKey::parse(k).map_err(SnapshotApiError::from))?;
    Ok((row, key))
}
