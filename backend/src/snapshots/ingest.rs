//! Streaming ingest: chunks in, a stored and inspected snapshot out, or a failure that leaves
//! nothing behind.
//!
//! The file is written to a staging file while its sha256 and size are computed on the way
//! (memory stays at one chunk), then judged: the Snapshot-API trailer must match, and the
//! inspector must find a restorable etcd database. Only then is it committed under its key.

use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::Stream;
use serde::Serialize;
use talos_dr_snapshot::{
    Restorability, RestoreVerdict, SnapshotContents, SnapshotKind, SnapshotStatus, has_trailer,
};

use super::disk::{FreeSpaceProbe, NoSpace};
use super::receive::{Limits, Received, receive, write_error};
use super::store::{SnapshotId, SnapshotKey, SnapshotStore, StoreError};
use super::transfers::{IngestProgress, Unwatched};

/// What the caller says it is sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedKind {
    /// EtcdSnapshot / `etcdctl snapshot save`: bbolt image plus a sha256 trailer.
    Snapshot,
    /// A copy of a member's `member/snap/db` (Talos Read/Copy): no trailer.
    RawCopy,
    /// A browser upload: either of the above, told apart by the file itself.
    Upload,
}

/// What was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredKind {
    /// Has a matching sha256 trailer; restores as is.
    Snapshot,
    /// No trailer; restores only with `--skip-hash-check` (Talos `--recover-skip-hash-check`).
    RawCopy,
}

/// Limits and naming for one ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub cluster: String,
    pub expected: ExpectedKind,
    /// Refuse the file as soon as more than this many bytes arrive.
    pub size_limit: u64,
    /// When the snapshot was taken (Unix ms); picks the key's day folder.
    pub taken_at_ms: i64,
    pub id: SnapshotId,
    /// The size the sender announced or the node's database has, when known: refused up front
    /// when the disk cannot hold it.
    pub expected_size: Option<u64>,
    /// Bytes that must stay free on the disk partial files are written to.
    pub min_free_bytes: u64,
    /// How free space is measured (`statvfs`; tests stand in a disk that fills up).
    pub free_space: FreeSpaceProbe,
}

/// A committed snapshot and what the inspector found in it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredSnapshot {
    pub key: SnapshotKey,
    pub kind: StoredKind,
    pub size: u64,
    /// sha256 of the whole stored file (trailer included), hex.
    pub sha256: String,
    /// sha256 of the bbolt image (the file without its trailer), hex.
    pub database_sha256: String,
    pub status: SnapshotStatus,
    pub verdict: RestoreVerdict,
    pub contents: SnapshotContents,
}

/// Why a file was not stored. `Display` is worded for the console.
#[derive(Debug, thiserror::Error)]
pub enum IngestFailure {
    #[error("stream failed after {} bytes: {message}", grouped(*received))]
    StreamFailed { received: u64, message: String },
    #[error("stream ended before any bytes arrived")]
    Empty,
    #[error("stream ended after {} bytes: {detail}", grouped(*received))]
    Cut { received: u64, detail: String },
    #[error(
        "sha256 trailer does not match: the file's last 32 bytes say {stored}, the {} bytes before them hash to {computed}; the file was changed or cut",
        grouped(*database_len)
    )]
    TrailerMismatch {
        database_len: u64,
        stored: String,
        computed: String,
    },
    #[error("expected {expected}, but {found}")]
    WrongKind { expected: String, found: String },
    #[error("not a restorable etcd snapshot: {reason}")]
    Damaged {
        reason: String,
        verdict: Option<Box<RestoreVerdict>>,
    },
    #[error("snapshot is larger than the limit of {} bytes (refused after {} bytes)", grouped(*limit), grouped(*received))]
    TooLarge { limit: u64, received: u64 },
    #[error("{space}; refused after {} bytes, nothing was stored", grouped(*received))]
    DiskFull { space: NoSpace, received: u64 },
    #[error("cannot write the staging file {}: {source}", path.display())]
    Staging {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the inspector stopped unexpectedly: {0}")]
    Inspector(String),
}

/// 5120 → "5,120": byte counts the way an SRE reads them.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for ExpectedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExpectedKind::Snapshot => "an etcd snapshot with a sha256 trailer",
            ExpectedKind::RawCopy => "a raw copy of member/snap/db",
            ExpectedKind::Upload => "an etcd snapshot or database copy",
        })
    }
}

/// Removes the staging file when dropped, so an error, a panic or a cancelled request never
/// leaves a partial file behind. Disarmed once the file has been committed.
struct StagedFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if self.armed
            && let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a partial snapshot file");
        }
    }
}

/// What the inspector found in the complete staged file.
struct Inspection {
    verdict: RestoreVerdict,
    status: Result<SnapshotStatus, String>,
    contents: Result<SnapshotContents, String>,
}

impl SnapshotStore {
    /// Streams `chunks` into the store. See the module docs for the checks; on any failure the
    /// staging file is removed and nothing is stored under the key.
    pub async fn ingest<S, E>(
        &self,
        chunks: S,
        options: &IngestOptions,
    ) -> Result<StoredSnapshot, IngestFailure>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: fmt::Display,
    {
        self.ingest_watched(chunks, options, &mut Unwatched).await
    }

    /// [`SnapshotStore::ingest`], telling `progress` the bytes received and when checking starts.
    pub async fn ingest_watched<S, E>(
        &self,
        chunks: S,
        options: &IngestOptions,
        progress: &mut (dyn IngestProgress + Send),
    ) -> Result<StoredSnapshot, IngestFailure>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: fmt::Display,
    {
        let key = SnapshotKey::new(&options.cluster, options.taken_at_ms, &options.id)?;
        let mut staged = StagedFile {
            path: self
                .staging_dir()
                .join(format!("{}.partial", options.id.as_str())),
            armed: true,
        };
        let disk = self.disk_space(options.min_free_bytes, options.free_space);
        let limits = Limits {
            size_limit: options.size_limit,
            expected_size: options.expected_size,
            disk: &disk,
        };
        let started = std::time::Instant::now();
        let mut received = receive(chunks, &staged.path, &limits, progress).await?;
        // Logged with the time the checks took (the inspection, with the final fsync beside it).
        let received_in = started.elapsed();
        let path = staged.path.clone();
        let skip_hash_check = !received.trailer.trailer_present;
        let digest = received.trailer.database_digest;
        // The inspector reads the file from the page cache while its last pages go to disk.
        let on_disk = received.on_disk.take();
        let inspection =
            tokio::task::spawn_blocking(move || inspect(&path, skip_hash_check, digest)).await;
        if let Some(on_disk) = on_disk {
            on_disk
                .wait()
                .await
                .map_err(|e| write_error(e, &staged.path, received.len, &disk))?;
        }
        let inspection = inspection.map_err(|e| IngestFailure::Inspector(e.to_string()))??;
        let checked_in = started.elapsed() - received_in;
        let kind = judge(options.expected, &received, &inspection)?;
        let status = inspection
            .status
            .map_err(|reason| damaged(reason, &inspection.verdict))?;
        let contents = inspection
            .contents
            .map_err(|reason| damaged(reason, &inspection.verdict))?;
        let size = self.commit(&staged.path, &key).await?;
        staged.armed = false;
        tracing::info!(
            key = %key, size, kind = ?kind, revision = status.revision,
            received_ms = received_in.as_millis() as u64,
            checked_ms = checked_in.as_millis() as u64,
            "snapshot stored"
        );
        Ok(StoredSnapshot {
            key,
            kind,
            size,
            sha256: received.sha256,
            database_sha256: received.trailer.database_sha256,
            status,
            verdict: inspection.verdict,
            contents,
        })
    }
}

fn damaged(reason: String, verdict: &RestoreVerdict) -> IngestFailure {
    IngestFailure::Damaged {
        reason,
        verdict: Some(Box::new(verdict.clone())),
    }
}

/// One walk of the staged file; the trailer is compared with the database digest computed
/// while the bytes were written (the same bytes, so hashing the file again would only repeat it).
fn inspect(
    path: &Path,
    skip_hash_check: bool,
    database_sha256: [u8; 32],
) -> Result<Inspection, IngestFailure> {
    let snapshot = talos_dr_snapshot::open(path).map_err(|e| IngestFailure::Staging {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let found = snapshot.inspect(skip_hash_check, Some(database_sha256));
    Ok(Inspection {
        verdict: found.verdict,
        status: found.status.map_err(|e| e.to_string()),
        contents: found.contents.map_err(|e| e.to_string()),
    })
}

/// Trailer and length first (they name a cut transfer precisely), the inspector's verdict
/// after; a file that is no database at all gets the inspector's reason straight away.
fn judge(
    expected: ExpectedKind,
    received: &Received,
    inspection: &Inspection,
) -> Result<StoredKind, IngestFailure> {
    let verdict = &inspection.verdict;
    let len = received.len;
    if verdict.length.expected_len.is_none() {
        let reason = verdict
            .with_skip_hash_check
            .reason
            .clone()
            .unwrap_or_else(|| verdict.length.message.clone());
        return Err(damaged(reason, verdict));
    }
    let cut = |detail: &str| IngestFailure::Cut {
        received: len,
        detail: detail.to_string(),
    };
    let mismatch = || IngestFailure::TrailerMismatch {
        database_len: len.saturating_sub(talos_dr_snapshot::TRAILER_LEN as u64),
        stored: verdict.trailer.stored_sha256.clone().unwrap_or_default(),
        computed: received.trailer.database_sha256.clone(),
    };
    let kind = match (expected, has_trailer(len), received.trailer.trailer_matches) {
        (ExpectedKind::Snapshot | ExpectedKind::Upload, true, Some(false)) => {
            return Err(mismatch());
        }
        (ExpectedKind::Snapshot | ExpectedKind::Upload, true, _) => StoredKind::Snapshot,
        (ExpectedKind::Snapshot, false, _) if len.is_multiple_of(512) => {
            return Err(cut(
                "trailer missing (a snapshot ends with a 32-byte sha256)",
            ));
        }
        (ExpectedKind::Snapshot, false, _) => {
            return Err(cut(
                "not whole pages plus a 32-byte sha256 trailer: the transfer was cut",
            ));
        }
        (ExpectedKind::RawCopy, true, Some(true)) => {
            return Err(IngestFailure::WrongKind {
                expected: expected.to_string(),
                found: "the file ends with a matching sha256 trailer: it is a Snapshot-API file"
                    .to_string(),
            });
        }
        (ExpectedKind::RawCopy | ExpectedKind::Upload, _, _) if !len.is_multiple_of(512) => {
            return Err(cut(
                "not a whole number of 512-byte sectors: the transfer was cut",
            ));
        }
        (ExpectedKind::RawCopy | ExpectedKind::Upload, _, _) => StoredKind::RawCopy,
    };
    let acceptable = match kind {
        StoredKind::Snapshot => {
            verdict.kind == SnapshotKind::SnapshotWithTrailer
                && verdict.restorability == Restorability::Restores
        }
        StoredKind::RawCopy => {
            verdict.kind == SnapshotKind::RawDatabaseCopy && verdict.with_skip_hash_check.restores
        }
    };
    if !acceptable {
        let reason = verdict
            .reason
            .clone()
            .or_else(|| (!verdict.length.ok).then(|| verdict.length.message.clone()))
            .or_else(|| verdict.problems.first().map(|p| p.message.clone()))
            .or_else(|| verdict.content_problems.first().cloned())
            .unwrap_or_else(|| "the inspector judged the file damaged".to_string());
        return Err(damaged(reason, verdict));
    }
    Ok(kind)
}
