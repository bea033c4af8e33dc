//! The write half of ingest: a stream of chunks into a staging file, hashing on the way,
//! enforcing the size limit and the free space the disk must keep, telling watchers how many
//! bytes are in.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt};
use talos_dr_snapshot::StreamingVerifier;
use tokio::task::JoinHandle;

use super::disk::{CHECK_EVERY_BYTES, DiskSpace, is_disk_full};
use super::ingest::IngestFailure;
use super::transfers::IngestProgress;

/// Bytes gathered before one write to the staging file.
const WRITE_BUFFER: usize = 1 << 20;

/// Bytes written between two background flushes of the staging file.
const WRITEBACK_EVERY: u64 = 32 << 20;

/// What the stream delivered, before any judgement.
pub(super) struct Received {
    pub len: u64,
    pub sha256: String,
    pub trailer: talos_dr_snapshot::StreamCheck,
    /// The final `fsync`, left running so the file can be inspected meanwhile; it must
    /// succeed before the file is committed.
    pub on_disk: Option<OnDisk>,
}

/// The staging file's final `fsync` in flight.
pub(super) struct OnDisk(JoinHandle<std::io::Result<()>>);

impl OnDisk {
    pub async fn wait(self) -> std::io::Result<()> {
        joined(self.0.await)?
    }
}

/// Limits for one file.
pub(super) struct Limits<'a> {
    pub size_limit: u64,
    /// The size the sender announced or the node's database has, when known.
    pub expected_size: Option<u64>,
    pub disk: &'a DiskSpace,
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
    // Talos streams snapshots in 1 KiB messages: they are gathered into 1 MiB pieces, each
    // written by a blocking thread while the next one fills.
    let mut file = StagingWriter::new(file.into_std().await);
    // Gives both the whole file's sha256 and the database part's, in one pass over the bytes.
    let mut hashes = StreamingVerifier::new();
    let mut len = 0u64;
    let mut checked_at = 0u64;
    let mut flushed_at = 0u64;
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
        file.write(&chunk).await.map_err(|e| failed(e, len))?;
        hashes.update(&chunk);
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
        if len - flushed_at >= WRITEBACK_EVERY {
            flushed_at = len;
            file.start_writeback();
        }
    }
    // On disk before it is renamed into place (the caller waits for `on_disk`): a crash must
    // never leave a committed but truncated snapshot.
    let on_disk = file.finish().await.map_err(|e| failed(e, len))?;
    if len == 0 {
        return Err(IngestFailure::Empty);
    }
    progress.verifying(len);
    let trailer = hashes.finish();
    Ok(Received {
        len,
        sha256: trailer.file_sha256.clone(),
        trailer,
        on_disk: Some(on_disk),
    })
}

/// The staging file, written in [`WRITE_BUFFER`] pieces from the blocking pool with one write
/// in flight while the next piece fills (two buffers, swapped: no copy into an intermediate
/// file buffer).
///
/// It is also flushed to disk in the background while it grows ([`StagingWriter::start_writeback`]),
/// so the final `fsync` only has the last few MiB left instead of the whole snapshot (seconds for
/// a GiB-sized one). A failed early flush fails the file: the kernel reports a writeback error
/// to one `fsync` only, so the final one might not see it again.
struct StagingWriter {
    file: Arc<std::fs::File>,
    buf: Vec<u8>,
    writing: Option<JoinHandle<(Vec<u8>, std::io::Result<()>)>>,
    syncing: Option<JoinHandle<std::io::Result<()>>>,
    sync_failed: Option<std::io::Error>,
}

fn joined<T>(r: Result<T, tokio::task::JoinError>) -> std::io::Result<T> {
    r.map_err(|e| std::io::Error::other(format!("the writing thread stopped: {e}")))
}

impl StagingWriter {
    fn new(file: std::fs::File) -> Self {
        StagingWriter {
            file: Arc::new(file),
            buf: Vec::with_capacity(WRITE_BUFFER),
            writing: None,
            syncing: None,
            sync_failed: None,
        }
    }

    async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        if !self.buf.is_empty() && self.buf.len() + chunk.len() > WRITE_BUFFER {
            self.submit().await?;
        }
        self.buf.extend_from_slice(chunk);
        if self.buf.len() >= WRITE_BUFFER {
            self.submit().await?;
        }
        Ok(())
    }

    /// Waits for the write in flight, then hands the full buffer to a blocking thread.
    async fn submit(&mut self) -> std::io::Result<()> {
        let spare = match self.writing.take() {
            Some(writing) => {
                let (mut spare, written) = joined(writing.await)?;
                written?;
                spare.clear();
                spare
            }
            None => Vec::with_capacity(WRITE_BUFFER),
        };
        let full = std::mem::replace(&mut self.buf, spare);
        let file = Arc::clone(&self.file);
        self.writing = Some(tokio::task::spawn_blocking(move || {
            let written = (&*file).write_all(&full);
            (full, written)
        }));
        Ok(())
    }

    /// Starts a flush to disk of what is written so far, unless one is still running.
    fn start_writeback(&mut self) {
        if let Some(syncing) = self.syncing.take() {
            if !syncing.is_finished() {
                self.syncing = Some(syncing);
                return;
            }
            if let Some(Err(e) | Ok(Err(e))) = syncing.now_or_never().map(joined) {
                self.sync_failed.get_or_insert(e);
            }
        }
        let file = Arc::clone(&self.file);
        self.syncing = Some(tokio::task::spawn_blocking(move || file.sync_data()));
    }

    /// Writes what is left, then starts the final `fsync`.
    async fn finish(mut self) -> std::io::Result<OnDisk> {
        if !self.buf.is_empty() {
            self.submit().await?;
        }
        if let Some(writing) = self.writing.take() {
            joined(writing.await)?.1?;
        }
        if let Some(syncing) = self.syncing.take() {
            joined(syncing.await)??;
        }
        if let Some(e) = self.sync_failed.take() {
            return Err(e);
        }
        let file = Arc::clone(&self.file);
        Ok(OnDisk(tokio::task::spawn_blocking(move || file.sync_all())))
    }
}
