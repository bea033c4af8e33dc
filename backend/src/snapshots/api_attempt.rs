//! One attempt to add to the history (take, raw copy, upload): listed as a transfer in flight
//! while bytes arrive, then recorded as a stored file with what the inspector found, or as a
//! failed attempt with its reason and no object.

use std::fmt;

use bytes::Bytes;
use futures::Stream;
use talos_dr_shared::snapshots::{
    ResourceKeys, SnapshotEntry, SnapshotEntryKind, SnapshotFigures, SnapshotTrigger,
    SnapshotVerdictSummary,
};
use talos_dr_snapshot::Restorability;

use super::api_error::SnapshotApiError;
use super::commands;
use super::history::HistoryRow;
use super::ingest::{ExpectedKind, IngestOptions, StoredKind, StoredSnapshot};
use super::store::SnapshotId;
use super::transfers::{TransferGuard, TransferStart};
use crate::auth::CurrentUser;
use crate::clock::now_ms;
use crate::state::{AppState, WatchedCluster};

fn verdict_summary(stored: &StoredSnapshot) -> SnapshotVerdictSummary {
    let restorability = match stored.verdict.restorability {
        Restorability::Restores => "restores",
        Restorability::RestoresOnlyWithSkipHashCheck => "restores_only_with_skip_hash_check",
        Restorability::WillNotRestore => "will_not_restore",
    };
    let reason = match stored.kind {
        StoredKind::RawCopy => Some(
            "raw copy of the database file: may not be consistent, restores only with skip-hash-check"
                .to_string(),
        ),
        StoredKind::Snapshot => stored.verdict.reason.clone(),
    };
    SnapshotVerdictSummary {
        restorability: restorability.into(),
        reason,
    }
}

fn resources(stored: &StoredSnapshot) -> Vec<ResourceKeys> {
    stored
        .contents
        .resources
        .iter()
        .map(|r| ResourceKeys {
            resource: r.resource.clone(),
            keys: r.keys,
            value_bytes: r.value_bytes,
            namespaces: r.namespaces.clone(),
        })
        .collect()
}

/// The node's etcd database size from the cluster's latest health poll (`EtcdStatus.dbSize`),
/// when the node answered it: what a snapshot or raw copy of it will weigh.
pub fn database_size(cluster: &WatchedCluster, node: &str) -> Option<u64> {
    let health = cluster.health.latest()?;
    let status = health
        .nodes
        .iter()
        .find(|n| n.node == node)?
        .etcd_status
        .as_ref()?;
    u64::try_from(status.db_size).ok().filter(|n| *n > 0)
}

/// What one attempt is: who, where, why, what kind.
pub(super) struct Attempt<'a> {
    pub cluster: &'a str,
    pub node: Option<String>,
    pub user: &'a CurrentUser,
    pub trigger: SnapshotTrigger,
    pub kind: SnapshotEntryKind,
    pub expected: ExpectedKind,
    /// What the file should weigh, when known (for the progress bar and the free-space check).
    pub expected_size: Option<u64>,
}

/// An attempt under way: its id (the history entry's, once recorded) and its place in the list
/// of transfers in flight, which it leaves when dropped.
pub(super) struct Transfer<'s> {
    id: SnapshotId,
    started_at_ms: i64,
    guard: TransferGuard<'s>,
}

impl Attempt<'_> {
    /// Lists the attempt as in flight. Called before the node is even asked, so everyone sees
    /// a slow node being waited for.
    pub fn begin<'s>(&self, state: &'s AppState) -> Transfer<'s> {
        let id = SnapshotId::random();
        let guard = state.snapshots().transfers.start(TransferStart {
            cluster: self.cluster.to_string(),
            id: id.as_str().to_string(),
            kind: self.kind,
            node: self.node.clone(),
            started_by: self.user.username.clone(),
            expected_bytes: self.expected_size,
        });
        Transfer {
            id,
            started_at_ms: now_ms(),
            guard,
        }
    }

    fn entry(&self, id: &SnapshotId, taken_at_ms: i64) -> SnapshotEntry {
        let mut entry = SnapshotEntry {
            id: id.as_str().to_string(),
            cluster: self.cluster.to_string(),
            node: self.node.clone(),
            taken_by: self.user.username.clone(),
            taken_at_ms,
            trigger: self.trigger,
            kind: self.kind,
            stored_as: None,
            failure: None,
            size: None,
            sha256: None,
            figures: None,
            live_keys: None,
            verdict: None,
            rehearsal: None,
            talosctl: String::new(),
        };
        entry.talosctl = commands::for_entry(&entry);
        entry
    }

    /// Records a failure that happened before any byte arrived (the node refused the call).
    pub async fn record_failure(
        &self,
        state: &AppState,
        transfer: Transfer<'_>,
        reason: String,
    ) -> Result<SnapshotEntry, SnapshotApiError> {
        let mut entry = self.entry(&transfer.id, transfer.started_at_ms);
        entry.failure = Some(reason);
        state
            .snapshots()
            .history
            .insert(&HistoryRow {
                entry: entry.clone(),
                object_key: None,
                resources: Vec::new(),
            })
            .await?;
        // Only now: a page told the transfer ended must find the entry.
        drop(transfer);
        notify_failure(state, &entry).await;
        Ok(entry)
    }

    /// Streams `chunks` into the store and records the outcome, stored or failed.
    pub async fn ingest<S, E>(
        &self,
        state: &AppState,
        mut transfer: Transfer<'_>,
        chunks: S,
    ) -> Result<SnapshotEntry, SnapshotApiError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: fmt::Display,
    {
        let service = state.snapshots();
        let store = service.store().await?;
        let id = transfer.id.clone();
        let taken_at_ms = transfer.started_at_ms;
        let options = IngestOptions {
            cluster: self.cluster.to_string(),
            expected: self.expected,
            size_limit: service.settings.size_limit,
            taken_at_ms,
            id: id.clone(),
            expected_size: self.expected_size,
            min_free_bytes: service.settings.min_free_bytes,
            free_space: service.settings.free_space,
        };
        let mut entry = self.entry(&id, taken_at_ms);
        let outcome = store
            .ingest_watched(chunks, &options, &mut transfer.guard)
            .await;
        let (object_key, resources) = match &outcome {
            Ok(stored) => {
                entry.size = Some(stored.size);
                entry.sha256 = Some(stored.sha256.clone());
                entry.figures = Some(SnapshotFigures {
                    hash: format!("{:x}", stored.status.hash),
                    revision: stored.status.revision,
                    total_keys: stored.status.total_key_entries,
                    total_size: stored.status.total_size,
                });
                entry.live_keys = Some(stored.contents.live_keys);
                entry.verdict = Some(verdict_summary(stored));
                entry.stored_as =
                    (self.kind == SnapshotEntryKind::Upload).then_some(match stored.kind {
                        StoredKind::Snapshot => SnapshotEntryKind::Snapshot,
                        StoredKind::RawCopy => SnapshotEntryKind::RawCopy,
                    });
                entry.talosctl = commands::for_entry(&entry);
                (Some(stored.key.as_str().to_string()), resources(stored))
            }
            Err(failure) => {
                tracing::warn!(cluster = self.cluster, id = %id.as_str(), error = %failure, "snapshot attempt failed");
                entry.failure = Some(failure.to_string());
                (None, Vec::new())
            }
        };
        let row = HistoryRow {
            entry: entry.clone(),
            object_key,
            resources,
        };
        if let Err(e) = service.history.insert(&row).await {
            // A stored file nobody can find in the history is only clutter.
            if let Ok(stored) = &outcome
                && let Err(delete) = store.delete(&stored.key).await
            {
                tracing::warn!(key = %stored.key, error = %delete, "cannot remove a snapshot whose history row failed");
            }
            return Err(e.into());
        }
        drop(transfer);
        notify_failure(state, &entry).await;
        Ok(entry)
    }
}

/// Tells the team when a snapshot taken from a node (by hand or on schedule) failed; a refused
/// upload is answered to the person who sent it and needs no notification.
async fn notify_failure(state: &AppState, entry: &SnapshotEntry) {
    let Some(reason) = &entry.failure else {
        return;
    };
    if entry.trigger == SnapshotTrigger::Upload {
        return;
    }
    let node = entry.node.as_deref().unwrap_or("a node");
    state
        .notifier()
        .notify(crate::notify::events::snapshot_failed(
            &entry.cluster,
            &format!(
                "{} from {node} failed: {reason}",
                match entry.trigger {
                    SnapshotTrigger::Schedule => "The scheduled snapshot",
                    _ => "A snapshot",
                }
            ),
            entry.taken_at_ms,
        ))
        .await;
}
