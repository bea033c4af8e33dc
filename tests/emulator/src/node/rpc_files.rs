//! Streaming RPCs: EtcdSnapshot, EtcdRecover, Copy, Read and Dmesg.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use talos_api::{common, machine};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::calls::RecoveryCall;
use super::volumes::BOOT_ID_PATH;
use super::{Node, RpcStream, SnapshotCut, lock};

/// Talos' stream chunker size.
const CHUNK: usize = 1024;

fn data(bytes: Vec<u8>) -> common::Data {
    common::Data {
        metadata: None,
        bytes,
    }
}

fn chunked(bytes: Vec<u8>) -> RpcStream<common::Data> {
    let chunks: Vec<Result<common::Data, Status>> =
        bytes.chunks(CHUNK).map(|c| Ok(data(c.to_vec()))).collect();
    Box::pin(futures::stream::iter(chunks))
}

/// etcd's snapshot messages cut into Talos' 1 KiB ones, with the injected cut (`after_bytes`,
/// then silence or an error) applied.
struct Rechunk {
    /// `pending[start..]` is what is not sent yet; taking chunks off the front by advancing
    /// `start` (not draining the Vec) keeps each byte from being moved again for every 1 KiB
    /// sent before it.
    pending: Vec<u8>,
    start: usize,
    sent: u64,
    cut: Option<SnapshotCut>,
}

enum Rechunked {
    More,
    /// The injected cut ends the stream here.
    Stop,
}

impl Rechunk {
    fn new(cut: Option<SnapshotCut>) -> Self {
        Rechunk {
            pending: Vec::with_capacity(CHUNK * 2),
            start: 0,
            sent: 0,
            cut,
        }
    }

    /// Adds one etcd message; every whole 1 KiB message it completes goes onto `out`.
    fn push(&mut self, blob: &[u8], out: &mut Vec<Result<common::Data, Status>>) -> Rechunked {
        let limit = self.cut.map(|c| c.after_bytes);
        self.pending.drain(..self.start);
        self.start = 0;
        self.pending.extend_from_slice(blob);
        while self.pending.len() - self.start >= CHUNK
            || (limit.is_some_and(|l| self.sent + (self.pending.len() - self.start) as u64 >= l)
                && self.pending.len() > self.start)
        {
            let mut take = (self.pending.len() - self.start).min(CHUNK);
            if let Some(limit) = limit {
                let left = limit.saturating_sub(self.sent) as usize;
                if left < take {
                    take = left;
                }
                if take == 0 {
                    if self.cut.is_some_and(|c| c.with_error) {
                        out.push(Err(Status::unavailable("etcd snapshot stream interrupted")));
                    }
                    return Rechunked::Stop;
                }
            }
            let chunk = self.pending[self.start..self.start + take].to_vec();
            self.start += take;
            self.sent += chunk.len() as u64;
            out.push(Ok(data(chunk)));
        }
        Rechunked::More
    }

    /// What is left when etcd's stream ends.
    fn rest(mut self) -> Option<common::Data> {
        (self.pending.len() > self.start).then(|| data(self.pending.split_off(self.start)))
    }
}

impl Node {
    /// The local member's Maintenance.Snapshot (bbolt image + sha256 trailer) in 1 KiB messages.
    pub async fn etcd_snapshot(&self) -> Result<RpcStream<common::Data>, Status> {
        self.require_control_plane("etcd snapshot")?;
        let cut = lock(&self.inner.state).snapshot_cut.take();
        let upstream = self.inner.local_etcd.snapshot().await.map_err(|e| {
            Status::new(
                e.code(),
                format!("failed reading etcd snapshot: {}", e.message()),
            )
        })?;
        // Re-chunked as the encoder asks for messages, without a task and a channel in between:
        // a GiB-sized snapshot is over a million messages, and handing each one from task to
        // task is work for nothing.
        let state = Some((upstream, Rechunk::new(cut)));
        let messages = futures::stream::unfold(state, |state| async move {
            let (mut upstream, mut rechunk) = state?;
            loop {
                let blob = match upstream.message().await {
                    Ok(Some(message)) => message.blob,
                    Ok(None) => break,
                    Err(status) => {
                        // Talos' chunker just stops when the source fails; the size check catches it.
                        tracing::warn!(error = %status.message(), "etcd snapshot stream failed");
                        break;
                    }
                };
                let mut out = Vec::with_capacity(blob.len() / CHUNK + 1);
                match rechunk.push(&blob, &mut out) {
                    Rechunked::Stop => return Some((out, None)),
                    Rechunked::More if out.is_empty() => continue,
                    Rechunked::More => return Some((out, Some((upstream, rechunk)))),
                }
            }
            Some((rechunk.rest().into_iter().map(Ok).collect(), None))
        })
        .flat_map(futures::stream::iter);
        Ok(Box::pin(messages))
    }

    /// Stores the uploaded snapshot as /var/lib/etcd.snapshot for a later Bootstrap(recover).
    /// A broken upload (the caller went away) leaves no file and counts neither as executed nor
    /// as refused.
    pub async fn etcd_recover(
        &self,
        mut upload: RpcStream<common::Data>,
    ) -> Result<machine::EtcdRecoverResponse, Status> {
        let attempt = self.attempt(RecoveryCall::EtcdRecover).await;
        let var_lib = self.inner.volumes.var_lib();
        if !var_lib.is_dir() {
            return attempt.finish(Err(Status::failed_precondition(
                "etcd service is not ready for recovery yet",
            )));
        }
        if let Err(status) = self.require_control_plane("etcd recover") {
            return attempt.finish(Err(status));
        }
        let path = self.inner.volumes.etcd_snapshot();
        // Talos deletes a partial upload; so does this guard when the request is dropped mid-way.
        let partial = PartialUpload(Some(path.clone()));
        let mut file = match tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o700)
            .open(&path)
            .await
        {
            Ok(file) => file,
            Err(e) => {
                return attempt.finish(Err(Status::internal(format!(
                    "error creating snapshot file: {e}"
                ))));
            }
        };
        while let Some(message) = upload.next().await {
            let message = message?;
            if let Err(e) = file.write_all(&message.bytes).await {
                return attempt.finish(Err(Status::internal(format!(
                    "error writing snapshot: {e}"
                ))));
            }
        }
        if let Err(e) = file.sync_all().await {
            return attempt.finish(Err(Status::internal(format!(
                "error syncing snapshot: {e}"
            ))));
        }
        partial.keep();
        let mut attempt = attempt;
        attempt.act();
        attempt.finish(Ok(machine::EtcdRecoverResponse {
            messages: vec![machine::EtcdRecover { metadata: None }],
        }))
    }

    fn host_path_for(&self, talos_path: &str) -> Result<PathBuf, Status> {
        if !talos_path.starts_with('/') {
            return Err(Status::invalid_argument(format!(
                "path is not absolute: {talos_path}"
            )));
        }
        self.inner.volumes.resolve(talos_path).ok_or_else(|| {
            Status::not_found(format!("lstat {talos_path}: no such file or directory"))
        })
    }

    /// A `.tar.gz` of a file (one entry named by its base name) or of a folder's contents.
    pub async fn copy(
        &self,
        request: machine::CopyRequest,
    ) -> Result<RpcStream<common::Data>, Status> {
        let talos_path = request.root_path;
        let host = self.host_path_for(&talos_path)?;
        if !host.exists() {
            return Err(Status::not_found(format!(
                "lstat {talos_path}: no such file or directory"
            )));
        }
        let archive = tokio::task::spawn_blocking(move || tar_gz(&host))
            .await
            .map_err(|e| Status::internal(format!("archiver failed: {e}")))?
            .map_err(|e| Status::internal(format!("archiver failed: {e}")))?;
        Ok(chunked(archive))
    }

    /// Raw bytes of one regular file.
    pub async fn read(
        &self,
        request: machine::ReadRequest,
    ) -> Result<RpcStream<common::Data>, Status> {
        if request.path == BOOT_ID_PATH {
            return Ok(chunked(format!("{}\n", self.boot_id()).into_bytes()));
        }
        let host = self.host_path_for(&request.path)?;
        let metadata = tokio::fs::metadata(&host).await.map_err(|_| {
            Status::not_found(format!("stat {}: no such file or directory", request.path))
        })?;
        if !metadata.is_file() {
            return Err(Status::invalid_argument("path must be a regular file"));
        }
        let bytes = tokio::fs::read(&host)
            .await
            .map_err(|e| Status::internal(format!("failed to read {}: {e}", request.path)))?;
        Ok(chunked(bytes))
    }

    /// Kernel-log records, one per message; `tail` skips history, `follow` keeps the stream open.
    pub async fn dmesg(
        &self,
        request: machine::DmesgRequest,
    ) -> Result<RpcStream<common::Data>, Status> {
        let (history, mut live) = self.inner.kmsg.open(request.tail);
        let past = futures::stream::iter(
            history
                .into_iter()
                .map(|r| Ok(data(r.format().into_bytes()))),
        );
        if !request.follow {
            return Ok(Box::pin(past));
        }
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                match live.recv().await {
                    Ok(record) => {
                        if tx
                            .send(Ok(data(record.format().into_bytes())))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Box::pin(past.chain(ReceiverStream::new(rx))))
    }
}

/// Removes an upload that did not complete, however the handler ends.
struct PartialUpload(Option<PathBuf>);

impl PartialUpload {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for PartialUpload {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Talos' archiver with "skip root": a folder's own entry is left out.
fn tar_gz(path: &Path) -> std::io::Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    builder.follow_symlinks(false);
    if path.is_dir() {
        append_tree(&mut builder, path, Path::new(""))?;
    } else {
        let name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let mut file = std::fs::File::open(path)?;
        builder.append_file(name, &mut file)?;
    }
    let mut encoder = builder.into_inner()?;
    encoder.flush()?;
    encoder.finish()
}

/// Entries relative to the copied folder, the folder itself left out.
fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &Path,
    relative: &Path,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = relative.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            builder.append_dir(&name, entry.path())?;
            append_tree(builder, &entry.path(), &name)?;
        } else {
            builder.append_path_with_name(entry.path(), &name)?;
        }
    }
    Ok(())
}
