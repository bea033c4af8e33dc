//! Read-only inspector for etcd snapshot files: bbolt databases, optionally followed by the
//! sha256 trailer `etcdctl snapshot save` appends. No etcd tools needed.
//!
//! - [`open`] maps a file (never reads it into memory); [`Snapshot::from_bytes`] takes bytes.
//! - [`Snapshot::status`] is `etcdctl snapshot status` (both total-key definitions), with the
//!   effective and compact revisions, consistent index, term and storage version.
//! - [`verify`] judges the file as `etcdctl snapshot restore` (etcd 3.4) would, with and without
//!   `--skip-hash-check`, and reports the trailer, length and structural checks.
//! - [`Snapshot::contents`] and [`diff`] describe the live key space in Kubernetes terms.
//! - [`Snapshot::inspect`] gives the verdict, the status and the contents from one walk.
//! - [`StreamingVerifier`] checks the trailer of a snapshot while it is being received.
//!
//! Any byte sequence gives a result or an error: every read is bounds-checked, each page is
//! visited at most once and the work per file is bounded by its length.

pub mod bbolt;
pub mod cli;
mod contents;
mod crc;
mod diff;
mod inspect;
pub mod mvcc;
mod scan;
mod snapshot;
mod status;
mod stream;
mod verify;

pub use inspect::Inspection;
pub use scan::{BucketSummary, MetaValues};
pub use snapshot::{Snapshot, SnapshotError, TRAILER_LEN, has_trailer};
pub use status::{SnapshotStatus, StatusSemantics, humanize_bytes};

/// Opens a snapshot file (memory-mapped).
pub fn open(path: impl AsRef<std::path::Path>) -> Result<Snapshot, SnapshotError> {
    Snapshot::open(path)
}
pub use contents::{
    KeyCount, KeyPlace, LeaseSummary, LiveKeys, OUTSIDE_REGISTRY, ResourceCount, SnapshotContents,
    classify,
};
pub use diff::{ChangeCounts, DiffGroup, KeyChange, KeyChangeKind, SnapshotDiff, diff};
pub use stream::{StreamCheck, StreamingVerifier};
pub use verify::{
    LengthCheck, Restorability, RestoreOutcome, RestoreVerdict, SnapshotKind, TrailerCheck, verify,
};
