//! Read-only access to a bbolt database image (the format of etcd's `member/snap/db` and of
//! snapshots). Every read is bounds-checked: any byte sequence gives a value or an error.
//!
//! Integers are little-endian: bbolt writes host order and etcd runs on little-endian hosts
//! (amd64, arm64).

mod meta;
mod problem;
mod walk;

pub use meta::{Meta, MetaSlot};
pub use problem::{Problem, ProblemKind, show};
pub use walk::{Entry, Walker};

use thiserror::Error;

pub const PAGE_HEADER_SIZE: usize = 16;
/// Size of a branch or leaf element descriptor.
pub const ELEMENT_SIZE: usize = 16;
pub const BUCKET_HEADER_SIZE: usize = 16;
pub const BUCKET_LEAF_FLAG: u32 = 0x01;

pub const BRANCH_PAGE: u16 = 0x01;
pub const LEAF_PAGE: u16 = 0x02;
pub const META_PAGE: u16 = 0x04;
pub const FREELIST_PAGE: u16 = 0x10;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BoltError {
    #[error("file is {len} bytes, too short for a bbolt database (needs two meta pages)")]
    TooShort { len: u64 },
    #[error("neither meta page is valid (meta 0: {meta0}; meta 1: {meta1})")]
    NoValidMeta { meta0: String, meta1: String },
}

pub(crate) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(u32::from_le_bytes(a))
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// The 16-byte header every page (and every inline bucket image) starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    pub id: u64,
    pub flags: u16,
    pub count: u16,
    pub overflow: u32,
}

impl PageHeader {
    pub fn parse(b: &[u8]) -> Option<PageHeader> {
        Some(PageHeader {
            id: u64_at(b, 0)?,
            flags: u16_at(b, 8)?,
            count: u16_at(b, 10)?,
            overflow: u32_at(b, 12)?,
        })
    }

    /// Page type as bbolt v1.3.6 (Debian's etcd 3.4) decides it: by flag bits.
    pub fn kind(&self) -> PageKind {
        let branch = self.flags & BRANCH_PAGE != 0;
        let leaf = self.flags & LEAF_PAGE != 0;
        match (branch, leaf) {
            (true, false) => PageKind::Branch,
            (false, true) => PageKind::Leaf,
            _ => PageKind::Invalid,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    Branch,
    Leaf,
    Invalid,
}

/// An opened bbolt image: the chosen meta page and the bytes it describes.
#[derive(Debug, Clone)]
pub struct BoltFile<'a> {
    data: &'a [u8],
    meta: Meta,
    slots: [MetaSlot; 2],
    chosen: usize,
}

impl<'a> BoltFile<'a> {
    /// Chooses the meta page as bbolt does (higher txid among valid ones).
    pub fn parse(data: &'a [u8]) -> Result<BoltFile<'a>, BoltError> {
        let (slots, chosen) = meta::choose(data)?;
        let Some(meta) = slots[chosen].meta.clone() else {
            return Err(BoltError::NoValidMeta {
                meta0: slots[0].describe(),
                meta1: slots[1].describe(),
            });
        };
        Ok(BoltFile {
            data,
            meta,
            slots,
            chosen,
        })
    }

    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn meta_slots(&self) -> &[MetaSlot; 2] {
        &self.slots
    }

    pub fn chosen_meta(&self) -> usize {
        self.chosen
    }

    pub fn page_size(&self) -> usize {
        self.meta.page_size as usize
    }

    /// `tx.Size()`: the bbolt high-water mark in bytes, which etcd reports as the total size.
    pub fn total_size(&self) -> u64 {
        self.meta
            .pgid
            .saturating_mul(u64::from(self.meta.page_size))
    }

    /// Number of whole or partial pages present in the file.
    pub fn pages_in_file(&self) -> u64 {
        (self.data.len() as u64).div_ceil(u64::from(self.meta.page_size))
    }
}
