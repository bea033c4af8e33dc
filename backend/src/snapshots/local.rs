//! The default store: a directory on the console's disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::local::LocalFileSystem;

use super::store::{SnapshotStore, StoreError, StoreKind};

/// Partial files live here, inside the store's root, so committing is one rename on the same
/// file system. Its leading dot keeps it apart from every cluster name.
pub(super) const STAGING_DIR: &str = ".incoming";

impl SnapshotStore {
    /// Opens (creating if needed) a snapshot directory. Partial files left by a crash are
    /// removed: they were never committed, so nothing refers to them.
    pub async fn local(root: impl AsRef<Path>) -> Result<SnapshotStore, StoreError> {
        let root = root.as_ref().to_path_buf();
        let description = format!("directory {}", root.display());
        let dir_err = |path: &PathBuf, source| StoreError::Directory {
            store: description.clone(),
            path: path.clone(),
            source,
        };
        let staging = root.join(STAGING_DIR);
        tokio::fs::create_dir_all(&staging)
            .await
            .map_err(|e| dir_err(&staging, e))?;
        let root = tokio::fs::canonicalize(&root)
            .await
            .map_err(|e| dir_err(&root, e))?;
        let staging = root.join(STAGING_DIR);
        clear_staging(&staging)
            .await
            .map_err(|e| dir_err(&staging, e))?;
        let objects = LocalFileSystem::new_with_prefix(&root)
            .map_err(|source| StoreError::Open {
                store: description.clone(),
                source: Box::new(source),
            })?
            // Deleting the last snapshot of a day should not leave empty day folders behind.
            .with_automatic_cleanup(true);
        Ok(SnapshotStore {
            objects: Arc::new(objects),
            kind: StoreKind::LocalDirectory,
            description,
            staging,
        })
    }
}

pub(super) async fn clear_staging(staging: &Path) -> std::io::Result<()> {
    let mut entries = tokio::fs::read_dir(staging).await?;
    while let Some(entry) = entries.next_entry().await? {
        if entry.file_type().await?.is_file() {
            tracing::info!(path = %entry.path().display(), "removing a partial snapshot left by an earlier run");
            tokio::fs::remove_file(entry.path()).await?;
        }
    }
    Ok(())
}
