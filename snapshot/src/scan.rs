//! One pass over a bbolt image computing everything `snapshot status` needs, with the
//! structural checks running in the same walk.

use std::collections::HashMap;

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

pub(crate) struct Scan<'a> {
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
    /// What [`crate::Snapshot::contents`] needs, when asked for.
    pub contents: Option<ContentsScan<'a>>,
}

/// The live key space as [`crate::Snapshot::live_keys`] replays it (lenient tombstones, every
/// decodable value), gathered in the status walk.
pub(crate) struct ContentsScan<'a> {
    /// User key → where its newest `KeyValue` sits in the file.
    pub live: HashMap<&'a [u8], LiveSlot, RandomState>,
    pub revisions_stored: u64,
    pub revision: i64,
    pub leases: Vec<mvcc::Lease>,
    /// The first value that cannot be decoded, in `live_keys`' words.
    pub error: Option<String>,
}

/// A user key's newest `KeyValue` as an offset into the file (16 bytes instead of a decoded
/// 64-byte `KeyValue`: a large snapshot holds hundreds of thousands of live keys), and which
/// of the two live-key definitions count it.
#[derive(Clone, Copy)]
pub(crate) struct LiveSlot {
    offset: u64,
    len: u32,
    flags: u8,
}

/// Live for etcd 3.6's status count (strict revision keys).
const STATUS_LIVE: u8 = 1;
/// Live for the contents (`live_keys` semantics).
const CONTENTS_LIVE: u8 = 2;

impl LiveSlot {
    pub fn counts_for_contents(&self) -> bool {
        self.flags & CONTENTS_LIVE != 0
    }

    /// The `KeyValue` bytes in `data` (the database bytes the scan walked).
    pub fn value<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        let start = usize::try_from(self.offset).ok()?;
        data.get(start..start.checked_add(self.len as usize)?)
    }
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
    /// Also gather what the contents summary needs (only with `decode_values`).
    pub contents: bool,
}

/// Files from this size on are hashed on worker threads.
const PARALLEL_FROM: usize = 64 << 20;

pub(crate) fn scan<'a>(file: &BoltFile<'a>, opts: ScanOptions) -> Scan<'a> {
    let parallel = file.data().len() >= PARALLEL_FROM;
    let (mut s, hash) = crate::crc::crc32c_of_stream(parallel, |feed| scan_with(file, opts, feed));
    s.hash = hash;
    s
}

/// The walk; `feed` receives the hashed byte stream in order.
fn scan_with<'a>(
    file: &BoltFile<'a>,
    opts: ScanOptions,
    feed: &mut dyn FnMut(&'a [u8]),
) -> Scan<'a> {
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
        contents: None,
    };
    let data = file.data();
    let offset_of = |v: &[u8]| (v.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize) as u64;
    // One map serves both live-key definitions; they only differ on malformed revision keys.
    // A seeded fast hasher: SipHash dominated the whole status run, and a fixed-key hash would
    // let a crafted file force collisions.
    let mut live: HashMap<&[u8], LiveSlot, RandomState> = HashMap::default();
    let mut stored = 0u64;
    let mut leases = Vec::new();
    let mut contents_error: Option<String> = None;
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
                stored += 1;
                if !opts.decode_values {
                    return;
                }
                let kv = mvcc::decode_key_value(e.value);
                if let Err(err) = &kv {
                    s.undecodable_revisions += 1;
                    s.first_decode_error.get_or_insert_with(|| {
                        format!("key bucket value cannot be decoded: {err}")
                    });
                    if opts.contents {
                        contents_error.get_or_insert_with(|| {
                            format!("key bucket value cannot be decoded: {err}")
                        });
                    }
                }
                let strict = mvcc::parse_revision_key(e.key);
                if strict.is_err() || kv.is_err() {
                    s.undecodable_for_36 += 1;
                }
                let Ok(kv) = kv else { return };
                let tombstone = mvcc::is_tombstone(e.key);
                let mut set = 0u8;
                let mut clear = 0u8;
                if opts.live_keys && strict.is_ok() {
                    if tombstone {
                        clear |= STATUS_LIVE;
                    } else {
                        set |= STATUS_LIVE;
                    }
                }
                if opts.contents {
                    if tombstone {
                        clear |= CONTENTS_LIVE;
                    } else {
                        set |= CONTENTS_LIVE;
                    }
                }
                if set != 0 {
                    let slot = live.entry(kv.key).or_insert(LiveSlot {
                        offset: 0,
                        len: 0,
                        flags: 0,
                    });
                    slot.flags = (slot.flags & !clear) | set;
                    if set & CONTENTS_LIVE != 0 {
                        slot.offset = offset_of(e.value);
                        slot.len = u32::try_from(e.value.len()).unwrap_or(u32::MAX);
                    }
                } else if clear != 0
                    && let Some(slot) = live.get_mut(kv.key)
                {
                    slot.flags &= !clear;
                    if slot.flags == 0 {
                        live.remove(kv.key);
                    }
                }
            } else if is_meta {
                read_meta(&mut s.meta, e.key, e.value);
            } else if is_lease && opts.decode_values {
                match mvcc::decode_lease(e.value) {
                    Ok(lease) if opts.contents => leases.push(lease),
                    Ok(_) => {}
                    Err(err) => {
                        s.undecodable_leases += 1;
                        if opts.contents {
                            contents_error.get_or_insert_with(|| {
                                format!("lease value cannot be decoded: {err}")
                            });
                        }
                    }
                }
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
    s.live_keys = opts.live_keys.then(|| {
        live.values()
            .filter(|slot| slot.flags & STATUS_LIVE != 0)
            .count() as u64
    });
    if opts.contents {
        s.contents = Some(ContentsScan {
            live,
            revisions_stored: stored,
            revision: s.revision,
            leases,
            error: contents_error,
        });
    }
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
