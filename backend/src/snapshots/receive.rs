//! The write half of ingest: a stream of chunks into a staging file, hashing on the way,
//! enforcing the size limit and the free space the disk must keep, telling watchers how many
//! bytes are in.

use std::fmt;
use std::path::Path;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use talos_dr_snapshot::StreamingVerifier;
use tokio::io::AsyncWriteExt;

use super::disk::{CHECK_EVERY_BYTES, DiskSpace, is_disk_full};
use super::ingest::IngestFailure;
use super::transfers::IngestProgress;

/// Bytes gathered before one write to the staging file.
const WRITE_BUFFER: usize = 1 << 20;

/// What the stream delivered, before any judgement.
pub(super) struct Received {
    pub len: u64,
    pub sha256: String,
    pub trailer: talos_dr_snapshot::StreamCheck,
}

/// Limits for one file.
pub(super) struct Limits<'a> {
    pub size_limit: u64,
    /// The size the sender announced or the node's database has, when known.
    pub expected_size: Option<u64>,
    pub disk: &'a DiskSpace,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Creates `path` (it must not exist) and writes the stream to it. The free space is checked
/// before the file is created, so a full disk refuses without writing a byte.
pub(super) async fn receive<S, E>(
    chunks: S,
    path: &Path,
    limits: &Limits<'_>,
    progress: &mut (dyn IngestProgress + Send),
) -> Result<Received, IngestFailure>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: fmt::Display,
{
    let dir = path.parent().unwrap_or(path);
    limits
        .disk
        .check(dir, limits.expected_size)
        .map_err(|space| IngestFailure::DiskFull { space, received: 0 })?;
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
        .map_err(|e| write_error(e, path, 0, limits.disk))?;
    write_stream(file, chunks, path, limits, progress).await
}

/// A failed write: a full disk gets its own clear message, anything else names the file.
pub(super) fn write_error(
    source: std::io::Error,
    path: &Path,
    received: u64,
    disk: &DiskSpace,
) -> IngestFailure {
    if is_disk_full(&source) {
        IngestFailure::DiskFull {
            space: disk.refused_write(),
            received,
        }
    } else {
        IngestFailure::Staging {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Writes the stream into an open `file` (named `path` in errors).
pub(super) async fn write_stream<S, E>(
    file: tokio::fs::File,
    chunks: S,
    path: &Path,
    limits: &Limits<'_>,
    progress: &mut (dyn IngestProgress + Send),
) -> Result<Received, IngestFailure>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: fmt::Display,
{
    let dir = path.parent().unwrap_or(path);
    let failed = |e, received| write_error(e, path, received, limits.disk);
    // Talos streams snapshots in 1 KiB messages; writing each one on its own costs a trip to the
    // blocking pool per KiB, which made taking a snapshot several times slower than etcdctl.
    let mut file = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut sha = Sha256::new();
    let mut trailer = StreamingVerifier::new();
    let mut len = 0u64;
    let mut checked_at = 0u64;
    let mut chunks = std::pin::pin!(chunks);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| IngestFailure::StreamFailed {
            received: len,
            message: e.to_string(),
        })?;
        if len + chunk.len() as u64 > limits.size_limit {
            return Err(IngestFailure::TooLarge {
                limit: limits.size_limit,
                received: len + chunk.len() as u64,
            });
        }
        file.write_all(&chunk).await.map_err(|e| failed(e, len))?;
        sha.update(&chunk);
        trailer.update(&chunk);
        len += chunk.len() as u64;
        progress.received(len);
        if len - checked_at >= CHECK_EVERY_BYTES {
            checked_at = len;
            let still_to_come = limits.expected_size.map(|e| e.saturating_sub(len));
            limits
                .disk
                .check(dir, still_to_come)
                .map_err(|space| IngestFailure::DiskFull {
                    space,
                    received: len,
                })?;
        }
    }
    // On disk before it is renamed into place: a crash must never leave a committed but
    // truncated snapshot.
    file.flush().await.map_err(|e| failed(e, len))?;
    file.get_ref()
        .sync_all()
        .await
        .map_err(|e| failed(e, len))?;
    if len == 0 {
        return Err(IngestFailure::Empty);
    }
    progress.verifying(len);
    Ok(Received {
        len,
        sha256: hex(&sha.finalize()),
        trailer: trailer.finish(),
    })
}
