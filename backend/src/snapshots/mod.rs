//! Snapshot history storage: where snapshot files live, how they get there, and how one is
//! proven to restore.
//!
//! - [`SnapshotStore`] ([`store`]): a local directory ([`SnapshotStore::local`]) or an
//!   S3-compatible bucket ([`SnapshotStore::s3`]); keys are generated here
//!   (`cluster/yyyy/mm/dd/<id>.snapshot`), never taken from a user's file name.
//! - [`SnapshotStore::ingest`] ([`ingest`]): a stream of chunks → staging file (sha256 and size
//!   on the way) → trailer and inspector checks → commit; any failure leaves nothing behind.
//!   The disk must keep [`disk::DiskSpace::min_free_bytes`] free; a full disk is refused with
//!   a message naming the store.
//! - [`transfers`]: takes, raw copies and uploads in flight, with their byte counts, streamed
//!   to every browser on the cluster's snapshots page.
//! - [`rehearse`] ([`rehearsal`]): restores a file with `etcdctl snapshot restore`, starts a
//!   throwaway etcd on loopback and compares what etcd serves with what the inspector read.

pub mod api;
mod api_attempt;
mod api_error;
pub mod api_read;
pub mod commands;
pub mod disk;
pub mod etcd;
pub mod history;
pub mod ingest;
mod key;
mod keyspace;
mod local;
mod receive;
pub mod rehearsal;
mod s3;
pub mod service;
pub mod store;
pub mod transfers;

pub use ingest::{ExpectedKind, IngestFailure, IngestOptions, StoredKind, StoredSnapshot};
pub use rehearsal::{RehearsalOptions, RehearsalReport, ResourceDifference, rehearse};
pub use s3::S3Settings;
pub use service::{SnapshotService, SnapshotSettings};
pub use store::{SnapshotId, SnapshotKey, SnapshotStore, StoreError, StoreKind};
pub use transfers::{SnapshotTransfersHub, TransferGuard, TransferStart};

#[cfg(test)]
mod tests;
