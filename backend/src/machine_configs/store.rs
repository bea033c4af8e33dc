//! Backup rows with their sealed configs in the database (older backups: sealed files on disk).

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
    /// For backups taken before the sealed config moved into the database: its file, relative
    /// to the store directory; empty otherwise.
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

    /// Writes the row with the sealed config: one statement, so a backup is there whole or not
    /// at all, on every replica.
    pub async fn insert(
        &self,
        backup: &MachineConfigBackup,
        sealed: &[u8],
    ) -> Result<(), MachineConfigError> {
        sqlx::query(
            "INSERT INTO machine_configs (id, cluster, node, taken_by, taken_at_ms, sha256, size_bytes, object_key, sealed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&backup.id)
        .bind(&backup.cluster)
        .bind(&backup.node)
        .bind(&backup.taken_by)
        .bind(backup.taken_at_ms)
        .bind(&backup.sha256)
        .bind(backup.size_bytes)
        .bind(&backup.object_key)
        .bind(sealed.to_vec())
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

    /// The sealed config: from the database, or from its file for an older backup.
    pub async fn read(&self, backup: &MachineConfigBackup) -> Result<Vec<u8>, MachineConfigError> {
        let sealed: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT sealed FROM machine_configs WHERE id = $1")
                .bind(&backup.id)
                .fetch_optional(&self.pool)
                .await?
                .flatten();
        if let Some(sealed) = sealed {
            return Ok(sealed);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(id: &str, object_key: &str) -> MachineConfigBackup {
        MachineConfigBackup {
            id: id.into(),
            cluster: "prod".into(),
            node: "10.0.0.1".into(),
            taken_by: "a new user".into(),
            taken_at_ms: 1,
            sha256: "00".into(),
            size_bytes: 2,
            object_key: object_key.into(),
        }
    }

    #[tokio::test]
    async fn new_backups_read_from_the_database_older_ones_from_their_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = crate::storage::Storage::open(dir.path())
            .await
            .expect("storage");
        let store = MachineConfigStore::new(storage.pool.clone(), dir.path().join("configs"));

        store
            .insert(&backup("a1", ""), b"sealed in the row")
            .await
            .expect("insert");
        let found = store.find("prod", "a1").await.expect("find").expect("row");
        assert_eq!(
            store.read(&found).await.expect("read"),
            b"sealed in the row"
        );
        assert!(!store.dir().exists(), "nothing written to disk");

        // A backup taken before: its row has no sealed bytes, its file is in the directory.
        std::fs::create_dir_all(store.dir()).expect("dir");
        std::fs::write(store.dir().join("b2.sealed"), b"sealed in a file").expect("file");
        sqlx::query(
            "INSERT INTO machine_configs (id, cluster, node, taken_by, taken_at_ms, sha256, size_bytes, object_key) VALUES ('b2', 'prod', '10.0.0.2', 'a new user', 2, '00', 2, 'b2.sealed')",
        )
        .execute(&storage.pool)
        .await
        .expect("old row");
        let old = store.find("prod", "b2").await.expect("find").expect("row");
        assert_eq!(store.read(&old).await.expect("read"), b"sealed in a file");
        std::fs::remove_file(store.dir().join("b2.sealed")).expect("remove");
        let gone = store.read(&old).await.expect_err("the file is gone");
        assert!(gone.to_string().contains("b2.sealed"), "{gone}");
    }
}
