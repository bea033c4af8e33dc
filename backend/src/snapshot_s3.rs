//! The snapshot store from the configuration: an S3-compatible bucket when an endpoint is
//! given, checked before the console serves so wrong credentials stop the start instead of the
//! first snapshot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::snapshots::{S3Settings, SnapshotStore, StoreError};

/// Per-request timeout towards the bucket.
const S3_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_REGION: &str = "us-east-1";

/// The `--snapshot-s3-*` flags as given.
#[derive(Debug, Clone, Default)]
pub struct S3Flags {
    pub endpoint: Option<String>,
    pub bucket: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum S3ConfigError {
    #[error("--snapshot-s3-endpoint {endpoint}: {flag} is needed too")]
    Missing {
        endpoint: String,
        flag: &'static str,
    },
    #[error("--snapshot-s3-endpoint {0:?}: expected an http:// or https:// URL")]
    BadEndpoint(String),
    #[error("--snapshot-s3-secret-file {path}: {message}")]
    Secret { path: PathBuf, message: String },
    /// The store's own error names the endpoint and bucket.
    #[error("snapshot store: {0}")]
    Store(#[from] StoreError),
}

impl S3Flags {
    /// `None` when no endpoint is given: snapshots stay in the local directory.
    pub fn settings(&self) -> Result<Option<S3Settings>, S3ConfigError> {
        let Some(endpoint) = self.endpoint.clone() else {
            return Ok(None);
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(S3ConfigError::BadEndpoint(endpoint));
        }
        let missing = |flag| S3ConfigError::Missing {
            endpoint: endpoint.clone(),
            flag,
        };
        let bucket = self
            .bucket
            .clone()
            .ok_or_else(|| missing("--snapshot-s3-bucket"))?;
        let access_key_id = self
            .access_key_id
            .clone()
            .ok_or_else(|| missing("--snapshot-s3-access-key-id"))?;
        let secret_file = self
            .secret_file
            .as_deref()
            .ok_or_else(|| missing("--snapshot-s3-secret-file"))?;
        Ok(Some(S3Settings {
            endpoint,
            bucket,
            region: self
                .region
                .clone()
                .unwrap_or_else(|| DEFAULT_REGION.to_string()),
            access_key_id,
            secret_access_key: read_secret(secret_file)?,
            path_style: true,
            timeout: S3_TIMEOUT,
        }))
    }
}

fn read_secret(path: &Path) -> Result<String, S3ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| S3ConfigError::Secret {
        path: path.to_path_buf(),
        message: format!("cannot read it: {e}"),
    })?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(S3ConfigError::Secret {
            path: path.to_path_buf(),
            message: "the file is empty".into(),
        });
    }
    Ok(secret.to_string())
}

/// Opens the bucket store with its own staging directory and asks the server once; refused
/// credentials or an unreachable endpoint come back as an error naming the endpoint.
pub async fn open_checked_s3(
    settings: &S3Settings,
    staging: &Path,
) -> Result<SnapshotStore, S3ConfigError> {
    let store = SnapshotStore::s3(settings, staging).await?;
    store.check().await?;
    Ok(store)
}
