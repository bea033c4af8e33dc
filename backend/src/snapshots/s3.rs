//! An S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...) as the snapshot store.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
};
use tokio::io::AsyncReadExt;

use super::store::{SnapshotKey, SnapshotStore, StoreError, StoreKind, remove_quietly};

/// Files up to this size go up in one request; larger ones as a multipart upload in parts of
/// this size (S3 wants at least 5 MiB per part).
const UPLOAD_PART: usize = 10 * 1024 * 1024;

/// How to reach the bucket. Credentials are static keys; the console never reads the
/// environment or instance metadata for them, so what it uses is what the operator configured.
#[derive(Clone)]
pub struct S3Settings {
    /// `https://s3.eu-west-1.amazonaws.com`, `http://minio.internal:9000`, ...
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Path-style requests (`endpoint/bucket/key`), which most self-hosted servers need.
    pub path_style: bool,
    /// Per-request timeout; a stalled server must not hang an ingest forever.
    pub timeout: Duration,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field("path_style", &self.path_style)
            .finish()
    }
}

impl SnapshotStore {
    /// A bucket store. `staging` is a local directory for partial files (the inspector reads a
    /// complete local copy before anything is uploaded); it belongs to this store alone, and
    /// files left in it by a crash are removed here. Nothing is sent to the server here; call
    /// [`SnapshotStore::check`] to learn early whether endpoint and credentials work.
    pub async fn s3(
        settings: &S3Settings,
        staging: impl Into<PathBuf>,
    ) -> Result<SnapshotStore, StoreError> {
        let description = format!(
            "S3 endpoint {} bucket {}",
            settings.endpoint, settings.bucket
        );
        let staging = staging.into();
        tokio::fs::create_dir_all(&staging)
            .await
            .map_err(|source| StoreError::Directory {
                store: description.clone(),
                path: staging.clone(),
                source,
            })?;
        super::local::clear_staging(&staging)
            .await
            .map_err(|source| StoreError::Directory {
                store: description.clone(),
                path: staging.clone(),
                source,
            })?;
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 2,
            retry_timeout: settings.timeout * 3,
        };
        let objects = AmazonS3Builder::new()
            .with_endpoint(&settings.endpoint)
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(&settings.secret_access_key)
            .with_virtual_hosted_style_request(!settings.path_style)
            // Client options first: `with_allow_http` edits them, and setting them replaces all.
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(settings.timeout)
                    .with_connect_timeout(settings.timeout),
            )
            .with_allow_http(settings.endpoint.starts_with("http://"))
            .with_retry(retry)
            .build()
            .map_err(|source| StoreError::Open {
                store: description.clone(),
                source: Box::new(source),
            })?;
        Ok(SnapshotStore {
            objects: Arc::new(objects),
            kind: StoreKind::S3,
            description,
            staging,
        })
    }
}

impl SnapshotStore {
    pub(super) async fn commit_by_upload(
        &self,
        staged: &Path,
        key: &SnapshotKey,
    ) -> Result<u64, StoreError> {
        let local_err = |source| StoreError::LocalFile {
            store: self.description.clone(),
            path: staged.to_path_buf(),
            source,
        };
        let size = tokio::fs::metadata(staged).await.map_err(local_err)?.len();
        let location = key.object_path();
        if size <= UPLOAD_PART as u64 {
            let bytes = tokio::fs::read(staged).await.map_err(local_err)?;
            self.objects
                .put(&location, PutPayload::from(bytes))
                .await
                .map_err(|e| self.backend_error("upload", key.as_str(), e))?;
        } else {
            self.upload_in_parts(staged, key).await?;
        }
        remove_quietly(staged).await;
        Ok(size)
    }

    /// A multipart upload that holds at most a few parts in memory; aborted on any failure so
    /// the bucket keeps no half-written object.
    async fn upload_in_parts(&self, staged: &Path, key: &SnapshotKey) -> Result<(), StoreError> {
        let upload = self
            .objects
            .put_multipart(&key.object_path())
            .await
            .map_err(|e| self.backend_error("upload", key.as_str(), e))?;
        let mut parts = WriteMultipart::new_with_chunk_size(upload, UPLOAD_PART);
        let mut file = match tokio::fs::File::open(staged).await {
            Ok(f) => f,
            Err(source) => {
                let _ = parts.abort().await;
                return Err(self.local_file_error(staged, source));
            }
        };
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            if let Err(e) = parts.wait_for_capacity(2).await {
                let _ = parts.abort().await;
                return Err(self.backend_error("upload", key.as_str(), e));
            }
            match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => parts.write(&buf[..n]),
                Err(source) => {
                    let _ = parts.abort().await;
                    return Err(self.local_file_error(staged, source));
                }
            }
        }
        parts
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| self.backend_error("upload", key.as_str(), e))
    }
}
