//! The console's database: SQLite in the data directory by default.
//!
//! Each capability keeps its SQL in its own small store type (`auth::UserStore`,
//! `audit::AuditStore`) built on the pool opened here, and the SQL stays plain enough (TEXT,
//! BIGINT, no SQLite-only functions in queries) that a PostgreSQL pool can back several console
//! replicas later without touching the handlers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use tower_sessions_sqlx_store::SqliteStore;

use crate::audit::AuditStore;
use crate::auth::UserStore;

/// Where the data directory goes when none is given.
pub const DEFAULT_DATA_DIR: &str = "./talos-dr-data";
const DATABASE_FILE: &str = "talos-dr.db";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {path}: cannot open it: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("database {path}: cannot bring its schema up to date: {source}")]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },
    #[error("database {path}: cannot create the session table: {source}")]
    Sessions { path: PathBuf, source: sqlx::Error },
}

/// The opened database and the stores built on it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    pub pool: SqlitePool,
    pub users: UserStore,
    pub audit: AuditStore,
    pub sessions: SqliteStore,
    path: PathBuf,
}

impl Storage {
    /// Opens (creating if needed) the database in `data_dir` and applies migrations. The
    /// directory is created readable by its owner only: it holds password hashes and sessions.
    pub async fn open(data_dir: &Path) -> Result<Self, StorageError> {
        create_private_dir(data_dir)?;
        let path = data_dir.join(DATABASE_FILE);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StorageError::Open {
                path: path.clone(),
                source,
            })?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| StorageError::Migrate {
                path: path.clone(),
                source,
            })?;
        let sessions = SqliteStore::new(pool.clone());
        sessions
            .migrate()
            .await
            .map_err(|source| StorageError::Sessions {
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            users: UserStore::new(pool.clone()),
            audit: AuditStore::new(pool.clone()),
            sessions,
            pool,
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes on disk: the database file and its write-ahead log.
    pub fn size_bytes(&self) -> u64 {
        let wal = self.path.with_extension("db-wal");
        [self.path.as_path(), wal.as_path()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }
}

fn create_private_dir(dir: &Path) -> Result<(), StorageError> {
    use std::os::unix::fs::DirBuilderExt;
    let err = |source| StorageError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    if dir.is_dir() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir).map_err(err)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %dir.display(), mode = format!("{:o}", mode & 0o777), "the data directory is readable by others; it holds password hashes and sessions (chmod 700)");
        }
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)
}
