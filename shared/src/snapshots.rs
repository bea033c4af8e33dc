//! Snapshot history as the browser sees it: one entry per attempt (stored or failed), the
//! contents of a stored file per resource and namespace, and the keys two snapshots disagree on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why a snapshot was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotTrigger {
    Manual,
    Schedule,
    Upload,
}

/// What the history entry holds (or was meant to hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotEntryKind {
    /// EtcdSnapshot output with its sha256 trailer: restores as is.
    Snapshot,
    /// A copy of `member/snap/db`: may not be consistent, restores only with skip-hash-check.
    RawCopy,
    /// A file someone uploaded (stored as a snapshot or a raw copy once inspected).
    Upload,
}

/// The figures `etcdctl snapshot status` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFigures {
    /// Hex, as etcdctl prints it.
    pub hash: String,
    pub revision: i64,
    pub total_keys: u64,
    pub total_size: u64,
}

/// How a stored file restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotVerdictSummary {
    /// `restores`, `restores_only_with_skip_hash_check` or `will_not_restore`.
    pub restorability: String,
    pub reason: Option<String>,
}

/// The outcome of the last restore rehearsal of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RehearsalResult {
    pub at_ms: i64,
    pub passed: bool,
    /// Findings or the error that stopped the rehearsal; empty when it passed.
    pub problems: Vec<String>,
    pub took_ms: u64,
}

/// One row of the history: a stored snapshot, or a failed attempt (`failure` set, no object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotEntry {
    pub id: String,
    pub cluster: String,
    /// The node it was taken from; `None` for uploads.
    pub node: Option<String>,
    pub taken_by: String,
    pub taken_at_ms: i64,
    pub trigger: SnapshotTrigger,
    pub kind: SnapshotEntryKind,
    /// For uploads: what the inspector found the file to be (`snapshot` or `raw_copy`).
    pub stored_as: Option<SnapshotEntryKind>,
    /// Why the attempt failed; `None` for stored snapshots.
    pub failure: Option<String>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub figures: Option<SnapshotFigures>,
    /// Live user keys.
    pub live_keys: Option<u64>,
    pub verdict: Option<SnapshotVerdictSummary>,
    pub rehearsal: Option<RehearsalResult>,
    /// What an SRE would run instead, e.g. `talosctl -n 10.0.0.2 etcd snapshot db.snapshot`.
    pub talosctl: String,
}

impl SnapshotEntry {
    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotList {
    /// Newest first, failed attempts included.
    pub snapshots: Vec<SnapshotEntry>,
}

/// Keys of one resource in a stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceKeys {
    pub resource: String,
    pub keys: u64,
    pub value_bytes: u64,
    /// Keys per namespace (`""` = cluster-scoped).
    pub namespaces: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDetail {
    pub snapshot: SnapshotEntry,
    /// Per resource; empty for failed attempts.
    pub resources: Vec<ResourceKeys>,
}

/// Request body of `POST /api/clusters/{cluster}/snapshots`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeSnapshotRequest {
    /// The node to take it from; the console picks a healthy follower when absent.
    #[serde(default)]
    pub node: Option<String>,
}

/// Request body of `POST /api/clusters/{cluster}/snapshots/raw-copy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawCopyRequest {
    pub node: String,
}

/// The answer to take, raw copy, upload and rehearse: the entry as recorded (stored or failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotResponse {
    pub snapshot: SnapshotEntry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyChangeKindView {
    /// Only in the newer: restoring the older loses it.
    Added,
    /// Only in the older: restoring the older brings it back.
    Removed,
    /// Different value: restoring the older reverts it.
    Changed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyChangeView {
    pub key: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub change: KeyChangeKindView,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeTotals {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceChanges {
    pub resource: String,
    pub namespace: Option<String>,
    pub totals: ChangeTotals,
}

/// `GET .../snapshots/{a}/diff/{b}`: what restoring the older of the two instead of the newer
/// would change, one page of keys at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDiffView {
    /// The older snapshot (by revision).
    pub old_id: String,
    pub new_id: String,
    pub old_revision: i64,
    pub new_revision: i64,
    pub totals: ChangeTotals,
    pub groups: Vec<ResourceChanges>,
    pub keys: Vec<KeyChangeView>,
    pub page: usize,
    pub page_size: usize,
    pub total_key_changes: u64,
}

/// Where a snapshot transfer in flight has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferPhase {
    /// Bytes are arriving from the node or the browser.
    Receiving,
    /// Every byte is in; the trailer and the inspector are checking the file.
    Verifying,
}

/// A snapshot being taken, copied or uploaded right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotTransfer {
    /// Becomes the history entry's id when the transfer ends.
    pub id: String,
    /// `snapshot`, `raw_copy` or `upload`.
    pub kind: SnapshotEntryKind,
    pub node: Option<String>,
    pub started_by: String,
    pub started_at_ms: i64,
    pub received_bytes: u64,
    /// From the node's etcd database size in the latest health poll (or the upload's length);
    /// `None` when nobody knows.
    pub expected_bytes: Option<u64>,
    pub phase: TransferPhase,
}

/// `event: transfers` on `GET /api/clusters/{cluster}/snapshots/transfers/stream`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotTransfers {
    pub cluster: String,
    /// Oldest first.
    pub in_flight: Vec<SnapshotTransfer>,
    /// How many transfers of this cluster have ended since the console started: when it grows,
    /// the history has a new entry (stored or failed).
    pub finished: u64,
}
