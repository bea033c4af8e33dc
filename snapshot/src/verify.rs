//! Integrity and the verdict `etcdctl snapshot restore` (etcd 3.4) would give.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::bbolt::Problem;
use crate::scan::{Scan, ScanOptions, scan};
use crate::snapshot::{Snapshot, TRAILER_LEN, has_trailer};

/// What the file is, judged from its length as restore does, and from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    /// `etcdctl snapshot save` output: bbolt image followed by its sha256.
    SnapshotWithTrailer,
    /// A copy of `member/snap/db` (no trailer), as Talos' `--recover-skip-hash-check` expects.
    RawDatabaseCopy,
    /// Neither: truncated, padded, not a bbolt file, or structurally broken.
    Damaged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrailerCheck {
    /// `len % 512 == 32`, etcd's rule for "has a trailer".
    pub present: bool,
    pub stored_sha256: Option<String>,
    pub computed_sha256: Option<String>,
    pub matches: Option<bool>,
}

/// The bbolt image's length against what its meta page says it should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LengthCheck {
    pub file_len: u64,
    /// Bytes of the bbolt image (file minus trailer when there is one).
    pub database_len: u64,
    /// `meta.pgid × pageSize`, when a meta page is readable.
    pub expected_len: Option<u64>,
    pub ok: bool,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Restorability {
    Restores,
    RestoresOnlyWithSkipHashCheck,
    WillNotRestore,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreOutcome {
    pub restores: bool,
    /// Why not, in etcdctl's words where etcdctl has words for it.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreVerdict {
    pub kind: SnapshotKind,
    pub trailer: TrailerCheck,
    pub length: LengthCheck,
    /// Structural problems (bbolt `tx.Check` in the strict ≥1.3.7 form), first ones verbatim.
    pub problems: Vec<Problem>,
    pub problem_count: u64,
    /// Problems in etcd's own encodings (revision keys, KeyValue/Lease protobufs, meta).
    pub content_problems: Vec<String>,
    /// `etcdctl snapshot restore FILE` (etcd 3.4).
    pub without_skip_hash_check: RestoreOutcome,
    /// `etcdctl snapshot restore FILE --skip-hash-check` (etcd 3.4).
    pub with_skip_hash_check: RestoreOutcome,
    pub restorability: Restorability,
    /// The outcome for the mode asked for.
    pub restores: bool,
    pub reason: Option<String>,
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn go_bytes(b: &[u8]) -> String {
    let parts: Vec<String> = b.iter().map(u8::to_string).collect();
    format!("[{}]", parts.join(" "))
}

/// Judges a snapshot as `etcdctl snapshot restore` would, with or without `--skip-hash-check`.
pub fn verify(snapshot: &Snapshot, skip_hash_check: bool) -> RestoreVerdict {
    let db = snapshot.database_bytes();
    if db.is_empty() {
        return verdict(snapshot, skip_hash_check, Database::Empty, None);
    }
    match crate::bbolt::BoltFile::parse(db) {
        Err(e) => verdict(snapshot, skip_hash_check, Database::Unreadable(e), None),
        Ok(bolt) => {
            let s = scan(
                &bolt,
                ScanOptions {
                    decode_values: true,
                    live_keys: false,
                    contents: false,
                },
            );
            let read = Database::Scanned {
                expected_len: bolt.total_size(),
                scan: &s,
            };
            verdict(snapshot, skip_hash_check, read, None)
        }
    }
}

/// What the database part turned out to be, for [`verdict`].
pub(crate) enum Database<'s, 'a> {
    Empty,
    Unreadable(crate::bbolt::BoltError),
    /// Opened and walked with `decode_values` on.
    Scanned {
        expected_len: u64,
        scan: &'s Scan<'a>,
    },
}

/// The verdict from a walk already made. `database_sha256`, when given, is the sha256 of the
/// database part computed while these very bytes were written, so the file is not hashed twice.
pub(crate) fn verdict(
    snapshot: &Snapshot,
    skip_hash_check: bool,
    database: Database<'_, '_>,
    database_sha256: Option<[u8; 32]>,
) -> RestoreVerdict {
    let bytes = snapshot.bytes();
    let file_len = bytes.len() as u64;
    let present = has_trailer(file_len);
    let db = snapshot.database_bytes();

    let mut trailer = TrailerCheck {
        present,
        stored_sha256: None,
        computed_sha256: None,
        matches: None,
    };
    let mut hash_failure = None;
    if present {
        let stored = &bytes[bytes.len() - TRAILER_LEN..];
        let computed: [u8; 32] = database_sha256.unwrap_or_else(|| Sha256::digest(db).into());
        let matches = computed.as_slice() == stored;
        trailer.stored_sha256 = Some(hex(stored));
        trailer.computed_sha256 = Some(hex(&computed));
        trailer.matches = Some(matches);
        if !matches {
            hash_failure = Some(format!(
                "expected sha256 {}, got {}",
                go_bytes(stored),
                go_bytes(&computed)
            ));
        }
    }

    // What the database part holds, judged the way etcd 3.4's restore reads it.
    let mut problems = Vec::new();
    let mut problem_count = 0;
    let mut content_problems = Vec::new();
    let mut expected_len = None;
    let db_failure: Option<String> = match database {
        Database::Empty => {
            // bbolt initialises an empty file as a new database, so restore "succeeds" with
            // nothing.
            content_problems.push(
                "the database part is empty: a restore would start an empty etcd".to_string(),
            );
            None
        }
        Database::Unreadable(e) => Some(format!("cannot open database: {e}")),
        Database::Scanned {
            expected_len: len,
            scan: s,
        } => {
            expected_len = Some(len);
            problems = s.problems.clone();
            problem_count = s.problem_count;
            if s.undecodable_revisions > 0 {
                content_problems.push(format!(
                    "{} key-bucket entries cannot be decoded ({})",
                    s.undecodable_revisions,
                    s.first_decode_error.clone().unwrap_or_default()
                ));
            }
            if s.undecodable_leases > 0 {
                content_problems.push(format!(
                    "{} lease entries cannot be decoded",
                    s.undecodable_leases
                ));
            }
            for m in &s.meta.unreadable {
                content_problems.push(format!("meta entry {m} is not a revision"));
            }
            match problems.iter().find(|p| p.kind.breaks_etcd_34()) {
                Some(p) => Some(format!("database structure is broken: {}", p.message)),
                None => content_problems.first().cloned(),
            }
        }
    };

    let database_len = db.len() as u64;
    let length = match expected_len {
        None => LengthCheck {
            file_len,
            database_len,
            expected_len,
            ok: false,
            message: "no readable meta page, so no expected length".to_string(),
        },
        Some(exp) if present && database_len != exp => LengthCheck {
            file_len,
            database_len,
            expected_len,
            ok: false,
            message: format!(
                "database part is {database_len} bytes but its meta page says {exp}: truncated or padded"
            ),
        },
        Some(exp) if database_len < exp => LengthCheck {
            file_len,
            database_len,
            expected_len,
            ok: false,
            message: format!(
                "file is {database_len} bytes but its meta page says {exp}: truncated"
            ),
        },
        Some(exp) => LengthCheck {
            file_len,
            database_len,
            expected_len,
            ok: true,
            message: if database_len == exp {
                "length matches the meta page".to_string()
            } else {
                format!(
                    "{} bytes of preallocated space after the data",
                    database_len - exp
                )
            },
        },
    };

    let too_short = (file_len < TRAILER_LEN as u64)
        .then(|| format!("file is {file_len} bytes: too short to hold a sha256 trailer"));
    let with_skip = match too_short.clone().or(db_failure.clone()) {
        None => RestoreOutcome {
            restores: true,
            reason: None,
        },
        Some(r) => RestoreOutcome {
            restores: false,
            reason: Some(r),
        },
    };
    let no_skip_reason = too_short
        .or_else(|| {
            (!present).then(|| "snapshot missing hash but --skip-hash-check=false".to_string())
        })
        .or(hash_failure)
        .or(db_failure);
    let without_skip = RestoreOutcome {
        restores: no_skip_reason.is_none(),
        reason: no_skip_reason,
    };

    let restorability = match (without_skip.restores, with_skip.restores) {
        (true, _) => Restorability::Restores,
        (false, true) => Restorability::RestoresOnlyWithSkipHashCheck,
        (false, false) => Restorability::WillNotRestore,
    };
    let structure_ok = expected_len.is_some() && problem_count == 0 && content_problems.is_empty();
    let kind = if !structure_ok || !length.ok || trailer.matches == Some(false) {
        SnapshotKind::Damaged
    } else if present {
        SnapshotKind::SnapshotWithTrailer
    } else if file_len.is_multiple_of(512) {
        SnapshotKind::RawDatabaseCopy
    } else {
        SnapshotKind::Damaged
    };
    let chosen = if skip_hash_check {
        &with_skip
    } else {
        &without_skip
    };
    RestoreVerdict {
        kind,
        restores: chosen.restores,
        reason: chosen.reason.clone(),
        trailer,
        length,
        problems,
        problem_count,
        content_problems,
        without_skip_hash_check: without_skip,
        with_skip_hash_check: with_skip,
        restorability,
    }
}

impl Snapshot {
    pub fn verify(&self, skip_hash_check: bool) -> RestoreVerdict {
        verify(self, skip_hash_check)
    }
}
