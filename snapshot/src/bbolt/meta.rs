//! Meta pages 0 and 1: validation and choice.

use super::{BoltError, PAGE_HEADER_SIZE, u32_at, u64_at};
use serde::Serialize;

pub const MAGIC: u32 = 0xED0C_DAED;
pub const VERSION: u32 = 2;
/// Offset of the meta struct inside its page, and its checksummed length.
const META_OFFSET: usize = PAGE_HEADER_SIZE;
const CHECKSUMMED_LEN: usize = 56;
/// bbolt reads the first 4 KiB before it knows the page size.
const MIN_PAGE_SIZE: u32 = 1024;
const MAX_PAGE_SIZE: u32 = 1 << 24;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meta {
    pub page_size: u32,
    pub root: u64,
    /// Freelist page id; `u64::MAX` means no freelist was written (always so for etcd).
    pub freelist: u64,
    /// High-water mark: pages in use.
    pub pgid: u64,
    pub txid: u64,
}

/// One of the two meta pages as found in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetaSlot {
    /// Byte offset the slot was read from.
    pub offset: u64,
    pub meta: Option<Meta>,
    /// Why the slot is unusable, when it is.
    pub problem: Option<String>,
}

impl MetaSlot {
    pub fn describe(&self) -> String {
        match (&self.meta, &self.problem) {
            (_, Some(p)) => p.clone(),
            (Some(m), None) => format!("txid {}", m.txid),
            (None, None) => "absent".to_string(),
        }
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn read_slot(data: &[u8], offset: usize) -> MetaSlot {
    let slot = |meta, problem: Option<String>| MetaSlot {
        offset: offset as u64,
        meta,
        problem,
    };
    let base = offset + META_OFFSET;
    let (Some(magic), Some(version), Some(page_size)) = (
        u32_at(data, base),
        u32_at(data, base + 4),
        u32_at(data, base + 8),
    ) else {
        return slot(
            None,
            Some(format!(
                "meta page at byte {offset} lies beyond the end of the file"
            )),
        );
    };
    if magic != MAGIC {
        return slot(
            None,
            Some(format!("invalid magic {magic:#x} (expected {MAGIC:#x})")),
        );
    }
    if version != VERSION {
        return slot(None, Some(format!("unsupported version {version}")));
    }
    let Some(checked) = data.get(base..base + CHECKSUMMED_LEN) else {
        return slot(None, Some("meta page truncated".to_string()));
    };
    let (Some(root), Some(freelist), Some(pgid), Some(txid), Some(checksum)) = (
        u64_at(data, base + 16),
        u64_at(data, base + 32),
        u64_at(data, base + 40),
        u64_at(data, base + 48),
        u64_at(data, base + 56),
    ) else {
        return slot(None, Some("meta page truncated".to_string()));
    };
    // bbolt ≥1.3.7 requires an exact checksum; 1.3.6 also took 0 ("unset"). We are strict.
    let computed = fnv1a64(checked);
    if checksum != computed {
        return slot(
            None,
            Some(format!(
                "checksum mismatch (stored {checksum:#x}, computed {computed:#x})"
            )),
        );
    }
    if !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size) || !page_size.is_power_of_two() {
        return slot(None, Some(format!("implausible page size {page_size}")));
    }
    if pgid < 2 {
        return slot(
            None,
            Some(format!(
                "high-water mark {pgid} is below the two meta pages"
            )),
        );
    }
    slot(
        Some(Meta {
            page_size,
            root,
            freelist,
            pgid,
            txid,
        }),
        None,
    )
}

/// Returns both slots and the index of the one bbolt would use.
pub fn choose(data: &[u8]) -> Result<([MetaSlot; 2], usize), BoltError> {
    if data.len() < 2 * MIN_PAGE_SIZE as usize {
        return Err(BoltError::TooShort {
            len: data.len() as u64,
        });
    }
    let m0 = read_slot(data, 0);
    // Meta 1 sits one page further; without a valid meta 0 the page size is unknown, so
    // probe the plausible sizes as bbolt ≥1.3.7 does.
    let m1 = match &m0.meta {
        Some(m) => read_slot(data, m.page_size as usize),
        None => {
            let mut first_bad = None;
            let mut found = None;
            for i in 0..15 {
                let s = read_slot(data, 1024usize << i);
                if s.meta.is_some() {
                    found = Some(s);
                    break;
                }
                first_bad.get_or_insert(s);
            }
            match (found, first_bad) {
                (Some(s), _) => s,
                (None, Some(s)) => s,
                (None, None) => read_slot(data, 4096),
            }
        }
    };
    let chosen = match (&m0.meta, &m1.meta) {
        (Some(a), Some(b)) => usize::from(b.txid > a.txid),
        (Some(_), None) => 0,
        (None, Some(_)) => 1,
        (None, None) => {
            return Err(BoltError::NoValidMeta {
                meta0: m0.describe(),
                meta1: m1.describe(),
            });
        }
    };
    Ok(([m0, m1], chosen))
}
