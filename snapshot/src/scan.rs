//! One pass over a bbolt image computing everything `snapshot status` needs, with the
//! structural checks running in the same walk.

use std::collections::HashSet;

use foldhash::fast::RandomState;

use crate::bbolt::{BoltFile, Problem, Walker};
use crate::mvcc;
use serde::Serialize;

/// Entries per top-level bucket (internal buckets included, as etcd ≤3.5 counts them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketSummary {
    pub name: String,
    pub entries: u64,
}

/// Values of etcd's `meta` bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetaValues {
    pub consistent_index: Option<u64>,
    pub term: Option<u64>,
    pub finished_compact_revision: Option<i64>,
    pub scheduled_compact_revision: Option<i64>,
    pub storage_version: Option<String>,
    /// `meta` entries whose encoding etcd 3.4 could not read on restore.
    pub unreadable: Vec<String>,
}

pub(crate) struct Scan {
    pub hash: u32,
    pub revision: i64,
    pub entries: u64,
    /// `None` unless asked for.
    pub live_keys: Option<u64>,
    pub buckets: Vec<BucketSummary>,
    pub meta: MetaValues,
    /// Structural problems (tx.Check).
    pub problems: Vec<Problem>,
    pub problem_count: u64,
    pub reachable_pages: u64,
    /// Problems with etcd's encodings that stop `etcdctl snapshot status` (3.4).
    pub status_errors: Vec<String>,
    /// `key`-bucket entries etcd 3.4's restore cannot decode.
    pub undecodable_revisions: u64,
    /// Same for the 3.6 rules (strict key parsing).
    pub undecodable_for_36: u64,
    pub first_decode_error: Option<String>,
    /// `lease` entries etcd cannot decode.
    pub undecodable_leases: u64,
}

fn be_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.try_into().ok()?))
}

/// What a scan computes beyond the etcd ≤3.5 status and the structural checks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanOptions {
    /// Decode every `key`/`lease` value (what restore and etcd ≥3.6 status do).
    pub decode_values: bool,
    /// Replay the history into the live key set (etcd ≥3.6 total keys).
    pub live_keys: bool,
}

/// Files from this size on are hashed on worker threads.
const PARALLEL_FROM: usize = 64 << 20;

pub(crate) fn scan<'a>(file: &BoltFile<'a>, opts: ScanOptions) -> Scan {
    let parallel = file.data().len() >= PARALLEL_FROM;
    let (mut s, hash) = crate::crc::crc32c_of_stream(parallel, |feed| scan_with(file, opts, feed));
    s.hash = hash;
    s
}

/// The walk; `feed` receives the hashed byte stream in order.
fn scan_with<'a>(file: &BoltFile<'a>, opts: ScanOptions, feed: &mut dyn FnMut(&'a [u8])) -> Scan {
    let mut walker = Walker::new(file);
    let mut s = Scan {
        hash: 0,
        revision: 0,
        entries: 0,
        live_keys: None,
        buckets: Vec::new(),
        meta: MetaValues::default(),
        problems: Vec::new(),
        problem_count: 0,
        reachable_pages: 0,
        status_errors: Vec::new(),
        undecodable_revisions: 0,
        undecodable_for_36: 0,
        first_decode_error: None,
        undecodable_leases: 0,
    };
    // A seeded fast hasher: SipHash dominated the whole status run, and a fixed-key hash would
    // let a crafted file force collisions.
    let mut live: HashSet<&[u8], RandomState> = HashSet::default();
    for bucket in walker.root_entries() {
        if !bucket.is_bucket {
            s.status_errors.push(format!(
                "cannot get hash of bucket {}",
                String::from_utf8_lossy(bucket.key)
            ));
            continue;
        }
        feed(bucket.key);
        let name = bucket.key;
        let mut entries = 0u64;
        let is_key = name == b"key";
        let is_meta = name == b"meta";
        let is_lease = name == b"lease";
        walker.walk_bucket(name, bucket.value, &mut |e| {
            entries += 1;
            feed(e.key);
            if !e.is_bucket {
                feed(e.value);
            }
            if is_key {
                match mvcc::main_revision_lenient(e.key) {
                    Some(main) => s.revision = main,
                    None => {
                        s.undecodable_revisions += 1;
                        s.first_decode_error.get_or_insert_with(|| {
                            format!(
                                "key bucket entry of {} bytes is not a revision",
                                e.key.len()
                            )
                        });
                    }
                }
                if !opts.decode_values {
                    return;
                }
                let kv = mvcc::decode_key_value(e.value);
                if let Err(err) = &kv {
                    s.undecodable_revisions += 1;
                    s.first_decode_error.get_or_insert_with(|| {
                        format!("key bucket value cannot be decoded: {err}")
                    });
                }
                match (mvcc::parse_revision_key(e.key), kv) {
                    (Ok(rev), Ok(kv)) if opts.live_keys => {
                        if rev.tombstone {
                            live.remove(kv.key);
                        } else {
                            live.insert(kv.key);
                        }
                    }
                    (Ok(_), Ok(_)) => {}
                    _ => s.undecodable_for_36 += 1,
                }
            } else if is_meta {
                read_meta(&mut s.meta, e.key, e.value);
            } else if is_lease && opts.decode_values && mvcc::decode_lease(e.value).is_err() {
                s.undecodable_leases += 1;
            }
        });
        s.entries += entries;
        s.buckets.push(BucketSummary {
            name: String::from_utf8_lossy(name).into_owned(),
            entries,
        });
    }
    if s.undecodable_revisions > 0 && s.revision == 0 {
        s.status_errors
            .push("key bucket holds entries that are not revisions".to_string());
    }
    s.live_keys = opts.live_keys.then_some(live.len() as u64);
    s.problem_count = walker.problem_count();
    s.problems = walker.problems().to_vec();
    s.reachable_pages = walker.reachable_pages();
    s
}

fn read_meta(m: &mut MetaValues, key: &[u8], value: &[u8]) {
    let name = String::from_utf8_lossy(key);
    match key {
        b"consistent_index" => m.consistent_index = be_u64(value),
        b"term" => m.term = be_u64(value),
        b"finishedCompactRev" | b"scheduledCompactRev" => {
            let rev = mvcc::compact_revision(value);
            if rev.is_none() && !value.is_empty() {
                m.unreadable.push(name.into_owned());
            } else if key == b"finishedCompactRev" {
                m.finished_compact_revision = rev;
            } else {
                m.scheduled_compact_revision = rev;
            }
        }
        b"storageVersion" => {
            m.storage_version = std::str::from_utf8(value).ok().map(str::to_string)
        }
        _ => {}
    }
}
