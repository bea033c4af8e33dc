//! Backup rows in the database and sealed files on disk.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlx::{AnyPool, Row as _};

use super::MachineConfigError;

/// One node's config as it was backed up. Serialized as the API's list entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineConfigBackup {
    pub id: String,
    pub cluster: String,
    pub node: String,
    pub taken_by: String,
    pub taken_at_ms: i64,
    /// Of the plaintext YAML, as `sha256sum` prints it.
    pub sha256: String,
    pub size_bytes: i64,
    /// The sealed file, relative to the store directory.
    #[serde(skip)]
    pub object_key: String,
}

impl MachineConfigBackup {
    /// Associated data of the sealed file: it opens only as this backup.
    pub fn binding(&self) -> String {
        format!("{}\n{}\n{}", self.id, self.cluster, self.node)
    }
}

/// Ids are 32 lowercase hex digits; checked before any lookup or path is built.
pub fn is_backup_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[derive(Debug, Clone)]
pub struct MachineConfigStore {
    pool: AnyPool,
    dir: PathBuf,
}

impl MachineConfigStore {
    pub fn new(pool: AnyPool, dir: PathBuf) -> Self {
        Self { pool, dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(&self, path: &Path) -> impl FnOnce(std::io::Error) -> MachineConfigError {
        let path = path.to_path_buf();
        move |source| MachineConfigError::Io { path, source }
    }

    /// Writes the sealed file (owner-only, via a temporary name), then the row.
    pub async fn insert(
        &self,
        backup: &MachineConfigBackup,
        sealed: &[u8],
    ) -> Result<(), MachineConfigError> {
        use std::io::Write as _;
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(self.io(&self.dir))?;
        let path = self.dir.join(&backup.object_key);
        let partial = self.dir.join(format!("{}.partial", backup.object_key));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .map_err(self.io(&partial))?;
        file.write_all(sealed).map_err(self.io(&partial))?;
        file.sync_all().map_err(self.io(&partial))?;
        std::fs::rename(&partial, &path).map_err(self.io(&path))?;
        sqlx::query(
            "INSERT INTO machine_configs (id, cluster, node, taken_by, taken_at_ms, sha256, size_bytes, object_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&backup.id)
        .bind(&backup.cluster)
        .bind(&backup.node)
        .bind(&backup.taken_by)
        .bind(backup.taken_at_ms)
        .bind(&backup.sha256)
        .bind(backup.size_bytes)
        .bind(&backup.object_key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The cluster's backups, newest first.
    pub async fn list(
        &self,
        cluster: &str,
    ) -> Result<Vec<MachineConfigBackup>, MachineConfigError> {
        let rows = sqlx::query(
            "SELECT id, cluster, node, taken_by, taken_at_ms, sha256, size_bytes, object_key FROM machine_configs WHERE cluster = $1 ORDER BY taken_at_ms DESC, node ASC",
        )
        .bind(cluster)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn find(
        &self,
        cluster: &str,
        id: &str,
    ) -> Result<Option<MachineConfigBackup>, MachineConfigError> {
        let row = sqlx::query(
            "SELECT id, cluster, node, taken_by, taken_at_ms, sha256, size_bytes, object_key FROM machine_configs WHERE cluster = $1 AND id = $2",
        )
        .bind(cluster)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub fn read(&self, backup: &MachineConfigBackup) -> Result<Vec<u8>, MachineConfigError> {
        let path = self.dir.join(&backup.object_key);
        std::fs::read(&path).map_err(self.io(&path))
    }
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<MachineConfigBackup, MachineConfigError> {
    Ok(MachineConfigBackup {
        id: row.try_get("id")?,
        cluster: row.try_get("cluster")?,
        node: row.try_get("node")?,
        taken_by: row.try_get("taken_by")?,
        taken_at_ms: row.try_get("taken_at_ms")?,
        sha256: row.try_get("sha256")?,
        size_bytes: row.try_get("size_bytes")?,
        object_key: row.try_get("object_key")?,
    })
}
