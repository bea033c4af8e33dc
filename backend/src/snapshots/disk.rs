//! Free space where partial snapshot files are written. A snapshot that fills the disk would
//! also starve the console's own database (and often etcd's, when the console runs on a control
//! plane node), so a configured minimum must stay free: checked before the first byte is written
//! and again while the file grows. A write the kernel refuses with ENOSPC is reported the same
//! way.

use std::path::Path;

/// Space left free on the store's disk unless the settings say otherwise.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 256 * 1024 * 1024;

/// How many bytes may be written between two free-space checks.
pub const CHECK_EVERY_BYTES: u64 = 8 * 1024 * 1024;

/// Measures the bytes an unprivileged process may still write on the file system holding a
/// path. A plain function so tests can stand in a disk that fills up.
pub type FreeSpaceProbe = fn(&Path) -> std::io::Result<u64>;

/// `statvfs`: blocks available to unprivileged users times the fragment size.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Where the disk space goes and how much must stay free.
#[derive(Debug, Clone)]
pub struct DiskSpace {
    /// The store in the words errors use ("directory /var/lib/talos-dr/snapshots", or the
    /// staging directory of an S3 store).
    pub store: String,
    pub min_free_bytes: u64,
    pub probe: FreeSpaceProbe,
}

/// Why a write is refused for lack of space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoSpace {
    pub store: String,
    /// Free bytes measured, or `None` when the kernel refused a write (ENOSPC, quota).
    pub free: Option<u64>,
    pub min_free: u64,
    /// Bytes still to come, when known (the expected size minus what is already written).
    pub needed: Option<u64>,
}

impl std::fmt::Display for NoSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the disk of the snapshot store ({}) is full: ",
            self.store
        )?;
        match self.free {
            None => write!(f, "a write was refused for lack of space"),
            Some(free) => {
                write!(f, "{} free", iec(free))?;
                if let Some(needed) = self.needed {
                    write!(f, ", the snapshot needs about {} more", iec(needed))?;
                }
                write!(f, ", and {} must stay free", iec(self.min_free))
            }
        }
    }
}

impl DiskSpace {
    /// Refuses when fewer than `min_free_bytes` (plus `needed`, when known) are free. A disk
    /// whose free space cannot be measured is not refused here: the write itself will tell.
    pub fn check(&self, dir: &Path, needed: Option<u64>) -> Result<(), NoSpace> {
        let free = match (self.probe)(dir) {
            Ok(free) => free,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot measure free disk space");
                return Ok(());
            }
        };
        let wanted = self.min_free_bytes.saturating_add(needed.unwrap_or(0));
        if free < wanted {
            return Err(NoSpace {
                store: self.store.clone(),
                free: Some(free),
                min_free: self.min_free_bytes,
                needed,
            });
        }
        Ok(())
    }

    /// The kernel refused a write (ENOSPC or a quota).
    pub fn refused_write(&self) -> NoSpace {
        NoSpace {
            store: self.store.clone(),
            free: None,
            min_free: self.min_free_bytes,
            needed: None,
        }
    }
}

/// Whether an I/O error means the disk (or the user's quota) is full.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// 432013312 → "412 MiB": sizes the way `df -h` prints them.
pub fn iec(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    if value < 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.0} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_df() {
        assert_eq!(iec(512), "512 B");
        assert_eq!(iec(412 * 1024 * 1024), "412 MiB");
        assert_eq!(iec(1024 * 1024 * 1024), "1.0 GiB");
        assert_eq!(iec(1536), "1.5 KiB");
    }

    #[test]
    fn statvfs_measures_a_real_disk() {
        let dir = tempfile::tempdir().expect("temp dir");
        let free = free_bytes(dir.path()).expect("statvfs works on a temp dir");
        assert!(free > 0, "a temp dir's disk has some free space");
        let missing = free_bytes(&dir.path().join("missing"));
        assert!(missing.is_err(), "a missing path is an error, not zero");
    }

    #[test]
    fn the_minimum_and_the_expected_size_must_fit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let free = free_bytes(dir.path()).expect("statvfs");
        let space = DiskSpace {
            store: format!("directory {}", dir.path().display()),
            min_free_bytes: free / 2,
            probe: free_bytes,
        };
        assert!(space.check(dir.path(), None).is_ok());
        // More than the disk holds: refused, naming the directory.
        let refused = space
            .check(dir.path(), Some(free.saturating_mul(2)))
            .expect_err("too large for the disk");
        let message = refused.to_string();
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        assert!(message.contains("is full"), "{message}");
        assert!(message.contains("must stay free"), "{message}");
    }
}
