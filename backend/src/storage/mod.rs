//! The console's database: SQLite in the data directory by default, or PostgreSQL when a
//! database URL names one, so that several console replicas can serve one team.
//!
//! Each capability keeps its SQL in its own small store type (`auth::UserStore`,
//! `audit::AuditStore`) built on the [`AnyPool`] opened here. The SQL is written once for both
//! databases: `$N` placeholders, TEXT and BIGINT columns (flags are 0/1 BIGINTs, never BOOLEAN),
//! no database-specific functions in queries. What differs lives here: the migrations (one
//! directory per database, the same versions), how a writing transaction serializes against other
//! writers ([`begin_write`]) and the session table.

pub mod changes;
pub mod replicas;
mod sessions;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::AnyConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Any, AnyPool, ConnectOptions as _, Transaction};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

pub use changes::{ChangeRelay, Topic};
pub use replicas::Replicas;
pub use sessions::SessionBackend;

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
    #[error("database {place}: cannot open it: {source}")]
    Open { place: String, source: sqlx::Error },
    #[error("database URL {url}: {problem}")]
    BadUrl { url: String, problem: String },
    #[error("database {place}: cannot bring its schema up to date: {source}")]
    Migrate {
        place: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("database {place}: cannot create the session table: {source}")]
    Sessions { place: String, source: sqlx::Error },
}

/// Which database backs the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// The opened database and the stores built on it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    pub pool: AnyPool,
    pub users: UserStore,
    pub audit: AuditStore,
    pub sessions: SessionBackend,
    kind: DatabaseKind,
    /// The typed pool LISTEN needs (PostgreSQL only).
    pg: Option<sqlx::PgPool>,
    /// Files that are not rows (snapshots, machine-config backups) live here with either database.
    data_dir: PathBuf,
    /// Where the database is, for messages: the SQLite file, or the PostgreSQL URL without its
    /// password.
    place: String,
    sqlite_file: Option<PathBuf>,
}

impl Storage {
    /// Opens (creating if needed) the SQLite database in `data_dir` and applies migrations. The
    /// directory is created readable by its owner only: it holds password hashes and sessions.
    pub async fn open(data_dir: &Path) -> Result<Self, StorageError> {
        Self::connect(data_dir, None).await
    }

    /// Opens the PostgreSQL database `database_url` names, or SQLite in `data_dir` without one.
    /// Either way the data directory holds the files that are not rows.
    pub async fn connect(
        data_dir: &Path,
        database_url: Option<&str>,
    ) -> Result<Self, StorageError> {
        create_private_dir(data_dir)?;
        match database_url {
            Some(url) => open_postgres(data_dir, url).await,
            None => open_sqlite(data_dir).await,
        }
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// The replica registry as seen by the console process `instance`.
    pub fn replicas(&self, instance: &str) -> Replicas {
        Replicas::new(self.pool.clone(), instance.to_string(), self.pg.is_some())
    }

    /// Sends the live changes of the console process `instance` to the other replicas.
    pub fn relay(&self, instance: &str) -> ChangeRelay {
        ChangeRelay::new(
            self.pg.is_some().then(|| self.pool.clone()),
            instance.to_string(),
        )
    }

    /// Hands every change another replica makes to `apply`, until the task is aborted; `None`
    /// on SQLite, where there are no other replicas. `instance` names this process: its own
    /// changes are not handed back.
    pub fn listen_for_replicas(
        &self,
        instance: &str,
        apply: impl Fn(Option<(Topic, &str)>) + Send + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let pg = self.pg.clone()?;
        Some(changes::listen(pg, instance.to_string(), apply))
    }

    /// The data directory (snapshots and machine-config backups go below it by default).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The database, for messages: a file path or a URL without its password.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// Bytes of the database: an SQLite file and its write-ahead log, or what PostgreSQL counts
    /// for the database.
    pub async fn size_bytes(&self) -> Result<u64, sqlx::Error> {
        let Some(path) = self.sqlite_file.as_ref() else {
            let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&self.pool)
                .await?;
            return Ok(u64::try_from(bytes).unwrap_or(0));
        };
        let wal = path.with_extension("db-wal");
        Ok([path.as_path(), wal.as_path()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum())
    }
}

async fn open_sqlite(data_dir: &Path) -> Result<Storage, StorageError> {
    let path = data_dir.join(DATABASE_FILE);
    let place = path.display().to_string();
    let open = |source| StorageError::Open {
        place: place.clone(),
        source,
    };
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    // The typed pool creates the file, switches it to WAL (kept in the file), migrates it and
    // holds the sessions; the rows go through the `Any` pool like PostgreSQL's.
    let typed = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options.clone())
        .await
        .map_err(open)?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&typed)
        .await
        .map_err(|source| StorageError::Migrate {
            place: place.clone(),
            source,
        })?;
    let sessions = SqliteStore::new(typed);
    sessions
        .migrate()
        .await
        .map_err(|source| StorageError::Sessions {
            place: place.clone(),
            source,
        })?;
    let url = options.create_if_missing(false).to_url_lossy();
    let pool = any_pool(url.as_str(), 4).await.map_err(open)?;
    Ok(Storage::assemble(
        pool,
        SessionBackend::Sqlite(sessions),
        None,
        data_dir,
        place,
        Some(path),
    ))
}

async fn open_postgres(data_dir: &Path, url: &str) -> Result<Storage, StorageError> {
    let place = redacted(url);
    let options: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| StorageError::BadUrl {
        url: place.clone(),
        problem: e.to_string(),
    })?;
    let open = |source| StorageError::Open {
        place: place.clone(),
        source,
    };
    let typed = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(open)?;
    // Several replicas may start at once on an empty database: the first takes the lock and
    // migrates, the others wait and find the schema current.
    sqlx::migrate!("./migrations/postgres")
        .run(&typed)
        .await
        .map_err(|source| StorageError::Migrate {
            place: place.clone(),
            source,
        })?;
    let sessions = PostgresStore::new(typed.clone());
    sessions
        .migrate()
        .await
        .map_err(|source| StorageError::Sessions {
            place: place.clone(),
            source,
        })?;
    let pool = any_pool(url, 8).await.map_err(open)?;
    Ok(Storage::assemble(
        pool,
        SessionBackend::Postgres(sessions),
        Some(typed),
        data_dir,
        place,
        None,
    ))
}

async fn any_pool(url: &str, connections: u32) -> Result<AnyPool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let options: AnyConnectOptions = url.parse()?;
    sqlx::pool::PoolOptions::<Any>::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

impl Storage {
    fn assemble(
        pool: AnyPool,
        sessions: SessionBackend,
        pg: Option<sqlx::PgPool>,
        data_dir: &Path,
        place: String,
        sqlite_file: Option<PathBuf>,
    ) -> Self {
        let shared = pg.is_some();
        Self {
            users: UserStore::new(pool.clone()),
            audit: AuditStore::new(pool.clone()),
            sessions,
            pool,
            kind: if shared {
                DatabaseKind::Postgres
            } else {
                DatabaseKind::Sqlite
            },
            pg,
            data_dir: data_dir.to_path_buf(),
            place,
            sqlite_file,
        }
    }
}

/// Names this console process among the replicas: host, process id and a random part (a
/// restarted process is a new name).
pub fn instance_name() -> String {
    use rand::RngCore;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "console".into());
    let mut random = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut random);
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{host}:{}:{hex}", std::process::id())
}

/// What a writing transaction serializes against. SQLite has one writer at a time anyway
/// (`BEGIN IMMEDIATE` takes the write lock up front, so a read-then-write never fails half way);
/// PostgreSQL takes a transaction-scoped advisory lock per kind, which replicas share.
#[derive(Debug, Clone, Copy)]
pub enum WriteLock {
    /// The audit trail's hash chain: each entry reads the previous one's hash.
    Audit,
    /// Incidents, steps and approvals: state moves read what they change.
    Recovery,
    /// A schedule's due runs, so that one replica fires each.
    Schedules,
}

impl WriteLock {
    fn key(self) -> i64 {
        // Arbitrary but fixed: "tdr" and a number, far from what other applications pick.
        match self {
            WriteLock::Audit => 0x7464_7200_0001,
            WriteLock::Recovery => 0x7464_7200_0002,
            WriteLock::Schedules => 0x7464_7200_0003,
        }
    }
}

/// Starts a transaction that writes, serialized against every other writer of `lock` on this
/// database, on this replica and on the others.
pub async fn begin_write(
    pool: &AnyPool,
    lock: WriteLock,
) -> Result<Transaction<'static, Any>, sqlx::Error> {
    if is_postgres(pool) {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
            .bind(lock.key())
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    } else {
        pool.begin_with("BEGIN IMMEDIATE").await
    }
}

/// Serializes a transaction that already writes (from [`begin_write`]) against the writers of a
/// second kind as well. SQLite's write lock covers every kind already; PostgreSQL takes the
/// kind's advisory lock. Take kinds in one order (recovery, then audit) to avoid deadlocks.
pub async fn lock_within(
    tx: &mut Transaction<'static, Any>,
    lock: WriteLock,
) -> Result<(), sqlx::Error> {
    if tx.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
            .bind(lock.key())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Starts a transaction whose reads all see one moment (an incident with its steps, say).
pub async fn begin_read(pool: &AnyPool) -> Result<Transaction<'static, Any>, sqlx::Error> {
    if is_postgres(pool) {
        pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
    } else {
        pool.begin().await
    }
}

pub fn is_postgres(pool: &AnyPool) -> bool {
    matches!(
        pool.connect_options().database_url.scheme(),
        "postgres" | "postgresql"
    )
}

/// The URL without its password, for messages and logs.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(a URL that does not parse)".to_string(),
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
