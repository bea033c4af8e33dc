//! Integrity and the verdict `etcdctl snapshot restore` (etcd 3.4) would give.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::bbolt::Problem;
use crate::scan::{ScanOptions, scan};
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn go_bytes(b: &[u8]) -> String {
    let parts: Vec<String> = b.iter().map(u8::to_string).collect();
    format!("[{}]", parts.join(" "))
}

/// Judges a snapshot as `etcdctl snapshot restore` would, with or without `--skip-hash-check`.
pub fn verify(snapshot: &Snapshot, skip_hash_check: bool) -> RestoreVerdict {
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
        let computed = Sha256::digest(db);
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
    let db_failure: Option<String> = if db.is_empty() {
        // bbolt initialises an empty file as a new database, so restore "succeeds" with nothing.
        content_problems
            .push("the database part is empty: a restore would start an empty etcd".to_string());
        None
    } else {
        match crate::bbolt::BoltFile::parse(db) {
            Err(e) => Some(format!("cannot open database: {e}")),
            Ok(bolt) => {
                expected_len = Some(bolt.total_size());
                let s = scan(
                    &bolt,
                    ScanOptions {
                        decode_values: true,
                        live_keys: false,
                    },
                );
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

/// Checks a snapshot while it is being received: feed chunks as they arrive, then `finish`.
/// Memory stays constant: only the last 32 bytes are held back (they may be the trailer).
#[derive(Clone, Default)]
pub struct StreamingVerifier {
    sha: Sha256,
    tail: Vec<u8>,
    len: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamCheck {
    pub len: u64,
    pub trailer_present: bool,
    /// sha256 of the bbolt part (whole stream when there is no trailer), hex.
    pub database_sha256: String,
    /// `Some(true)` when the trailer matches; `None` when there is none.
    pub trailer_matches: Option<bool>,
}

impl StreamingVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.len += chunk.len() as u64;
        if chunk.len() >= TRAILER_LEN {
            self.sha.update(&self.tail);
            let (body, tail) = chunk.split_at(chunk.len() - TRAILER_LEN);
            self.sha.update(body);
            self.tail.clear();
            self.tail.extend_from_slice(tail);
        } else {
            self.tail.extend_from_slice(chunk);
            if self.tail.len() > TRAILER_LEN {
                let excess = self.tail.len() - TRAILER_LEN;
                self.sha.update(&self.tail[..excess]);
                self.tail.drain(..excess);
            }
        }
    }

    pub fn finish(self) -> StreamCheck {
        let present = has_trailer(self.len);
        let mut sha = self.sha;
        if present {
            let digest = sha.finalize();
            StreamCheck {
                len: self.len,
                trailer_present: true,
                database_sha256: hex(&digest),
                trailer_matches: Some(digest.as_slice() == self.tail.as_slice()),
            }
        } else {
            sha.update(&self.tail);
            StreamCheck {
                len: self.len,
                trailer_present: false,
                database_sha256: hex(&sha.finalize()),
                trailer_matches: None,
            }
        }
    }
}

impl Snapshot {
    pub fn verify(&self, skip_hash_check: bool) -> RestoreVerdict {
        verify(self, skip_hash_check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_verifier_matches_whole_file_check() {
        let body: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
        let mut file = body.clone();
        file.extend_from_slice(&Sha256::digest(&body));
        for chunk in [1usize, 5, 31, 32, 33, 100, 4096] {
            let mut v = StreamingVerifier::new();
            file.chunks(chunk).for_each(|c| v.update(c));
            let r = v.finish();
            assert_eq!(r.trailer_matches, Some(true), "chunk {chunk}");
            assert_eq!(r.database_sha256, hex(&Sha256::digest(&body)));
        }
        let mut bad = file.clone();
        bad[10] ^= 1;
        let mut v = StreamingVerifier::new();
        v.update(&bad);
        assert_eq!(v.finish().trailer_matches, Some(false));
        let mut v = StreamingVerifier::new();
        v.update(&body);
        let r = v.finish();
        assert_eq!((r.trailer_present, r.trailer_matches), (false, None));
        assert_eq!(r.database_sha256, hex(&Sha256::digest(&body)));
    }
}
