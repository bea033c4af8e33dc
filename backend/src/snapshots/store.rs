//! Where snapshot files live: a local directory or an S3-compatible bucket, behind one type so
//! the rest of the console never sees the object-store library.
//!
//! Every file is first written to a local staging directory (the inspector needs a complete
//! local file) and only then committed under its final key: a rename on local disk, an upload
//! for a bucket. Keys are always generated here, never taken from a user's file name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{Stream, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use super::key::plain_segment;
pub use super::key::{SnapshotId, SnapshotKey};

/// Failures of the snapshot store, each naming the store (directory or endpoint) and the key.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("snapshot name {name:?} refused: {reason}")]
    BadKey { name: String, reason: &'static str },
    #[error("cluster name {name:?} cannot be part of a snapshot key: {reason}")]
    BadCluster { name: String, reason: &'static str },
    #[error("snapshot store {store}: directory {path}: {source}")]
    Directory {
        store: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot store {store}: cannot be opened: {source}")]
    Open {
        store: String,
        source: Box<object_store::Error>,
    },
    #[error(
        "snapshot store {store}: the server refused the credentials while trying to {operation} {key}: {source}"
    )]
    Credentials {
        store: String,
        operation: &'static str,
        key: String,
        source: Box<object_store::Error>,
    },
    #[error("snapshot store {store}: no snapshot stored under {key}")]
    NotFound { store: String, key: String },
    #[error("snapshot store {store}: cannot {operation} {key}: {source}")]
    Backend {
        store: String,
        operation: &'static str,
        key: String,
        source: Box<object_store::Error>,
    },
    #[error("snapshot store {store}: local file {path}: {source}")]
    LocalFile {
        store: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Local disk or an S3-compatible bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    LocalDirectory,
    S3,
}

/// The snapshot store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    pub(super) objects: Arc<dyn ObjectStore>,
    pub(super) kind: StoreKind,
    /// "directory /var/lib/..." or "S3 endpoint http://... bucket b": used in every error.
    pub(super) description: String,
    /// Where ingest writes partial files; for a local store it sits inside the store's root
    /// so that committing is a rename on the same file system.
    pub(super) staging: PathBuf,
}

impl SnapshotStore {
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The store in the words errors use: the directory or the endpoint and bucket.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The local directory partial files are written to before they are committed.
    pub fn staging_dir(&self) -> &Path {
        &self.staging
    }

    /// The free-space rules for the staging directory, worded with the store's name (a bucket's
    /// partial files sit on the console's own disk, so that directory is named instead).
    pub(super) fn disk_space(
        &self,
        min_free_bytes: u64,
        probe: super::disk::FreeSpaceProbe,
    ) -> super::disk::DiskSpace {
        let store = match self.kind {
            StoreKind::LocalDirectory => self.description.clone(),
            StoreKind::S3 => format!(
                "staging directory {} of {}",
                self.staging.display(),
                self.description
            ),
        };
        super::disk::DiskSpace {
            store,
            min_free_bytes,
            probe,
        }
    }

    pub(super) fn backend_error(
        &self,
        operation: &'static str,
        key: &str,
        source: object_store::Error,
    ) -> StoreError {
        let store = self.description.clone();
        let key = key.to_string();
        match source {
            object_store::Error::NotFound { .. } => StoreError::NotFound { store, key },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => StoreError::Credentials {
                store,
                operation,
                key,
                source: Box::new(source),
            },
            source => StoreError::Backend {
                store,
                operation,
                key,
                source: Box::new(source),
            },
        }
    }

    /// Moves a complete, already inspected staged file to its final key and removes the
    /// staged file. On failure nothing is left under `key`.
    pub(super) async fn commit(&self, staged: &Path, key: &SnapshotKey) -> Result<u64, StoreError> {
        let result = match self.kind {
            StoreKind::LocalDirectory => self.commit_by_rename(staged, key).await,
            StoreKind::S3 => self.commit_by_upload(staged, key).await,
        };
        if result.is_err() {
            remove_quietly(staged).await;
        }
        result
    }

    async fn commit_by_rename(&self, staged: &Path, key: &SnapshotKey) -> Result<u64, StoreError> {
        let local_err = |source| StoreError::LocalFile {
            store: self.description.clone(),
            path: staged.to_path_buf(),
            source,
        };
        let size = tokio::fs::metadata(staged).await.map_err(local_err)?.len();
        let staged_name = self.staged_object_path(staged)?;
        self.objects
            .rename(&staged_name, &key.object_path())
            .await
            .map_err(|e| self.backend_error("store", key.as_str(), e))?;
        Ok(size)
    }

    pub(super) fn local_file_error(&self, path: &Path, source: std::io::Error) -> StoreError {
        StoreError::LocalFile {
            store: self.description.clone(),
            path: path.to_path_buf(),
            source,
        }
    }

    /// The staged file's name inside a local store (it must live under the store's root).
    fn staged_object_path(&self, staged: &Path) -> Result<ObjectPath, StoreError> {
        let name =
            staged
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| StoreError::LocalFile {
                    store: self.description.clone(),
                    path: staged.to_path_buf(),
                    source: std::io::Error::other("staged file name is not UTF-8"),
                })?;
        Ok(ObjectPath::from(format!(
            "{}/{name}",
            super::local::STAGING_DIR
        )))
    }

    /// The stored file's size, or `NotFound`.
    pub async fn size(&self, key: &SnapshotKey) -> Result<u64, StoreError> {
        let meta = self
            .objects
            .head(&key.object_path())
            .await
            .map_err(|e| self.backend_error("look up", key.as_str(), e))?;
        Ok(meta.size)
    }

    /// The stored file as a stream of chunks (never the whole file in memory).
    pub async fn read(
        &self,
        key: &SnapshotKey,
    ) -> Result<impl Stream<Item = Result<bytes::Bytes, StoreError>> + use<>, StoreError> {
        let got = self
            .objects
            .get(&key.object_path())
            .await
            .map_err(|e| self.backend_error("read", key.as_str(), e))?;
        let this = self.clone();
        let name = key.as_str().to_string();
        Ok(got
            .into_stream()
            .map(move |chunk| chunk.map_err(|e| this.backend_error("read", &name, e))))
    }

    /// Copies a stored file to a local path (for rehearsal or inspection of a stored file).
    pub async fn download(&self, key: &SnapshotKey, to: &Path) -> Result<u64, StoreError> {
        let local_err = |source| StoreError::LocalFile {
            store: self.description.clone(),
            path: to.to_path_buf(),
            source,
        };
        let mut chunks = Box::pin(self.read(key).await?);
        let mut file = tokio::fs::File::create(to).await.map_err(local_err)?;
        let mut size = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    remove_quietly(to).await;
                    return Err(e);
                }
            };
            size += chunk.len() as u64;
            if let Err(e) = file.write_all(&chunk).await {
                remove_quietly(to).await;
                return Err(local_err(e));
            }
        }
        file.flush().await.map_err(local_err)?;
        Ok(size)
    }

    pub async fn delete(&self, key: &SnapshotKey) -> Result<(), StoreError> {
        self.objects
            .delete(&key.object_path())
            .await
            .map_err(|e| self.backend_error("delete", key.as_str(), e))
    }

    /// Keys stored for one cluster, oldest day first (staged partial files are never listed).
    pub async fn list(&self, cluster: &str) -> Result<Vec<SnapshotKey>, StoreError> {
        plain_segment(cluster).map_err(|reason| StoreError::BadCluster {
            name: cluster.to_string(),
            reason,
        })?;
        let prefix = ObjectPath::from(cluster);
        let mut listing = self.objects.list(Some(&prefix));
        let mut keys = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.backend_error("list", cluster, e))?;
            if let Ok(key) = SnapshotKey::parse(meta.location.as_ref()) {
                keys.push(key);
            }
        }
        keys.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(keys)
    }

    /// Asks the backend something harmless so that wrong credentials or a wrong endpoint show
    /// up when the console starts, not at the first snapshot.
    pub async fn check(&self) -> Result<(), StoreError> {
        let probe = ObjectPath::from("talos-dr-store-check");
        match self.objects.head(&probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.backend_error("reach", probe.as_ref(), e)),
        }
    }
}

pub(super) async fn remove_quietly(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove a partial snapshot file");
    }
}
