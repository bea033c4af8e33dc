//! Opening a snapshot file without reading it into memory.

use std::fs::File;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::bbolt::{BoltError, BoltFile};

#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("cannot open snapshot {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot map snapshot {path}: {source}")]
    Map {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a readable bbolt database: {source}")]
    Bolt { path: PathBuf, source: BoltError },
    #[error("{path}: snapshot file integrity check failed. {count} errors found: {first}")]
    Integrity {
        path: PathBuf,
        count: u64,
        first: String,
    },
    #[error("{path}: {message}")]
    Content { path: PathBuf, message: String },
}

enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// The bytes of one snapshot file (mapped, so a multi-GiB file costs no heap).
pub struct Snapshot {
    path: PathBuf,
    bytes: Bytes,
}

/// Length of the sha256 trailer `etcdctl snapshot save` appends.
pub const TRAILER_LEN: usize = 32;

/// Whether etcd would treat a file of `len` bytes as carrying a sha256 trailer: restore uses
/// exactly this rule (bbolt files are a whole number of 512-byte sectors).
pub fn has_trailer(len: u64) -> bool {
    len % 512 == TRAILER_LEN as u64
}

impl Snapshot {
    pub fn open(path: impl AsRef<Path>) -> Result<Snapshot, SnapshotError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| SnapshotError::Open {
            path: path.clone(),
            source,
        })?;
        let len = file
            .metadata()
            .map_err(|source| SnapshotError::Open {
                path: path.clone(),
                source,
            })?
            .len();
        let bytes = if len == 0 {
            // An empty file cannot be mapped.
            Bytes::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only and the file is not modified through it. A file
            // changed by another process while mapped can give inconsistent bytes, which the
            // bounds-checked reader turns into errors; truncation during the read can end the
            // process with SIGBUS, so callers should inspect snapshot copies, not live files.
            // Populating the page tables in one call is several times cheaper than taking a
            // fault per page during the walk; it reads nothing that is not already cached.
            let map =
                unsafe { memmap2::MmapOptions::new().populate().map(&file) }.map_err(|source| {
                    SnapshotError::Map {
                        path: path.clone(),
                        source,
                    }
                })?;
            Bytes::Mapped(map)
        };
        tracing::debug!(path = %path.display(), len, "snapshot opened");
        Ok(Snapshot { path, bytes })
    }

    /// A snapshot held in memory (tests, fuzzing, small uploads).
    pub fn from_bytes(name: impl Into<PathBuf>, bytes: Vec<u8>) -> Snapshot {
        Snapshot {
            path: name.into(),
            bytes: Bytes::Owned(bytes),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bbolt part: the file without its trailer when it has one (as restore cuts it off).
    pub fn database_bytes(&self) -> &[u8] {
        let b: &[u8] = &self.bytes;
        if has_trailer(b.len() as u64) {
            &b[..b.len() - TRAILER_LEN]
        } else {
            b
        }
    }

    pub(crate) fn bolt(&self) -> Result<BoltFile<'_>, SnapshotError> {
        BoltFile::parse(self.database_bytes()).map_err(|source| SnapshotError::Bolt {
            path: self.path.clone(),
            source,
        })
    }
}
