//! The console's snapshot settings and the store they open, shared by every snapshot route.

use std::path::PathBuf;

use tokio::sync::OnceCell;

use super::history::SnapshotHistory;
use super::rehearsal::RehearsalOptions;
use super::store::{SnapshotStore, StoreError};
use super::transfers::SnapshotTransfersHub;

/// An etcd database is capped at 8 GiB; a little room on top for the trailer and slack.
pub const DEFAULT_SIZE_LIMIT: u64 = 9 * 1024 * 1024 * 1024;

/// Where snapshots go and how large one may be.
#[derive(Debug, Clone)]
pub struct SnapshotSettings {
    /// The local snapshot directory (default `<data-dir>/snapshots`).
    pub root: PathBuf,
    /// Files larger than this are refused while they arrive.
    pub size_limit: u64,
    /// Bytes that must stay free on the disk partial snapshot files are written to: a take or
    /// upload that would go below is refused (before it starts, or as soon as it gets there).
    pub min_free_bytes: u64,
    /// How free space is measured: `statvfs`, unless a test stands in a disk that fills up.
    pub free_space: super::disk::FreeSpaceProbe,
    /// Tools and patience for restore rehearsals.
    pub rehearsal: RehearsalOptions,
}

impl SnapshotSettings {
    pub fn in_data_dir(data_dir: &std::path::Path) -> Self {
        Self {
            root: data_dir.join("snapshots"),
            size_limit: DEFAULT_SIZE_LIMIT,
            min_free_bytes: super::disk::DEFAULT_MIN_FREE_BYTES,
            free_space: super::disk::free_bytes,
            rehearsal: RehearsalOptions::default(),
        }
    }
}

/// The settings, the history table, and the store opened on first use (so a console that never
/// takes a snapshot never creates the directory).
#[derive(Debug)]
pub struct SnapshotService {
    pub settings: SnapshotSettings,
    pub history: SnapshotHistory,
    /// Takes, raw copies and uploads in flight, for the progress bars.
    pub transfers: SnapshotTransfersHub,
    store: OnceCell<SnapshotStore>,
}

impl SnapshotService {
    pub fn new(settings: SnapshotSettings, history: SnapshotHistory) -> Self {
        Self {
            settings,
            history,
            transfers: SnapshotTransfersHub::default(),
            store: OnceCell::new(),
        }
    }

    /// An already opened store (an S3 bucket, or a directory opened at startup).
    pub fn with_store(
        settings: SnapshotSettings,
        history: SnapshotHistory,
        store: SnapshotStore,
    ) -> Self {
        Self {
            settings,
            history,
            transfers: SnapshotTransfersHub::default(),
            store: OnceCell::new_with(Some(store)),
        }
    }

    pub async fn store(&self) -> Result<&SnapshotStore, StoreError> {
        self.store
            .get_or_try_init(|| SnapshotStore::local(&self.settings.root))
            .await
    }
}
