//! Everything a received snapshot is judged by — the restore verdict, `snapshot status` and the
//! contents summary — from one walk of the file instead of one each.

use crate::bbolt::BoltFile;
use crate::contents::summarize;
use crate::mvcc;
use crate::scan::{Scan, ScanOptions, scan};
use crate::snapshot::{Snapshot, SnapshotError};
use crate::verify::{Database, verdict};
use crate::{RestoreVerdict, SnapshotContents, SnapshotStatus};

/// What [`Snapshot::inspect`] found.
#[derive(Debug)]
pub struct Inspection {
    /// As [`Snapshot::verify`] gives it.
    pub verdict: RestoreVerdict,
    /// As [`Snapshot::status`] gives it.
    pub status: Result<SnapshotStatus, SnapshotError>,
    /// As [`Snapshot::contents`] gives it, except that a structural problem in any bucket (not
    /// only `key` and `lease`) stops it, as it stops the status.
    pub contents: Result<SnapshotContents, SnapshotError>,
}

impl Snapshot {
    /// `verify(skip_hash_check)`, `status()` and `contents()` in one walk.
    ///
    /// `database_sha256` is the sha256 of the database part when it is already known because
    /// it was computed over these very bytes while they were written to the file; the trailer
    /// is then compared with it instead of hashing the file a second time.
    pub fn inspect(&self, skip_hash_check: bool, database_sha256: Option<[u8; 32]>) -> Inspection {
        let db = self.database_bytes();
        let bolt = match BoltFile::parse(db) {
            Ok(bolt) => bolt,
            Err(e) => {
                let read = if db.is_empty() {
                    Database::Empty
                } else {
                    Database::Unreadable(e.clone())
                };
                let unreadable = || SnapshotError::Bolt {
                    path: self.path().to_path_buf(),
                    source: e.clone(),
                };
                return Inspection {
                    verdict: verdict(self, skip_hash_check, read, database_sha256),
                    status: Err(unreadable()),
                    contents: Err(unreadable()),
                };
            }
        };
        let s = scan(
            &bolt,
            ScanOptions {
                decode_values: true,
                live_keys: true,
                contents: true,
            },
        );
        let read = Database::Scanned {
            expected_len: bolt.total_size(),
            scan: &s,
        };
        Inspection {
            verdict: verdict(self, skip_hash_check, read, database_sha256),
            status: self.status_from(&bolt, &s),
            contents: self.contents_from(bolt.data(), &s),
        }
    }

    fn contents_from(&self, data: &[u8], s: &Scan<'_>) -> Result<SnapshotContents, SnapshotError> {
        let path = self.path().to_path_buf();
        if let Some(p) = s.problems.iter().find(|p| p.kind.breaks_etcd_34()) {
            return Err(SnapshotError::Integrity {
                path,
                count: s.problem_count,
                first: p.message.clone(),
            });
        }
        let Some(c) = &s.contents else {
            return Err(SnapshotError::Content {
                path,
                message: "the walk did not gather the contents".to_string(),
            });
        };
        if let Some(message) = &c.error {
            return Err(SnapshotError::Content {
                path,
                message: message.clone(),
            });
        }
        let live = || c.live.values().filter(|slot| slot.counts_for_contents());
        // Every slot points at a value that decoded during the walk.
        let values = live()
            .filter_map(|slot| slot.value(data))
            .filter_map(|v| mvcc::decode_key_value(v).ok());
        Ok(summarize(
            values,
            live().count() as u64,
            c.revisions_stored,
            c.revision,
            &c.leases,
        ))
    }
}
