//! etcd's own encodings inside the bbolt buckets: revision keys, `mvccpb.KeyValue`,
//! `leasepb.Lease` (protobuf, decoded by hand: three small messages).

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("revision key of {0} bytes (expected 17, or 18 for a tombstone)")]
    RevisionKeyLength(usize),
    #[error("revision key without the '_' separator")]
    RevisionKeySeparator,
    #[error("negative revision in revision key")]
    NegativeRevision,
    #[error("protobuf: {0}")]
    Protobuf(&'static str),
}

/// A key of the `key` bucket: main and sub revision, plus the tombstone marker of deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisionKey {
    pub main: i64,
    pub sub: i64,
    pub tombstone: bool,
}

fn be_u64(b: &[u8]) -> Option<u64> {
    let a: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(a))
}

/// The main revision as etcd 3.4 reads it (first 8 bytes, no validation). `None` when the key
/// is too short for etcd 3.4's decoder, which would crash on it.
pub fn main_revision_lenient(key: &[u8]) -> Option<i64> {
    if key.len() < 17 {
        return None;
    }
    be_u64(key).map(|m| m as i64)
}

/// Strict decoding as etcd 3.6's `snapshot status` does it.
pub fn parse_revision_key(key: &[u8]) -> Result<RevisionKey, DecodeError> {
    if key.len() != 17 && key.len() != 18 {
        return Err(DecodeError::RevisionKeyLength(key.len()));
    }
    if key[8] != b'_' {
        return Err(DecodeError::RevisionKeySeparator);
    }
    let main = be_u64(key).map(|m| m as i64).unwrap_or(-1);
    let sub = be_u64(&key[9..]).map(|s| s as i64).unwrap_or(-1);
    if main < 0 || sub < 0 {
        return Err(DecodeError::NegativeRevision);
    }
    Ok(RevisionKey {
        main,
        sub,
        tombstone: key.len() == 18 && key[17] == b't',
    })
}

/// Whether etcd treats this bucket key as a delete marker.
pub fn is_tombstone(key: &[u8]) -> bool {
    key.len() == 18 && key[17] == b't'
}

/// Decodes the 17-byte revision encoding used by `meta/finishedCompactRev`.
pub fn compact_revision(value: &[u8]) -> Option<i64> {
    if value.len() < 17 {
        return None;
    }
    be_u64(value).map(|m| m as i64)
}

/// `mvccpb.KeyValue`, borrowing from the snapshot bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyValue<'a> {
    pub key: &'a [u8],
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub value: &'a [u8],
    pub lease: i64,
}

/// `leasepb.Lease`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub ttl: i64,
    pub remaining_ttl: i64,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(DecodeError::Protobuf("unexpected end of varint"));
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(DecodeError::Protobuf("integer overflow"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError::Protobuf("integer overflow"))
    }

    fn skip(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return Err(DecodeError::Protobuf("unexpected end of field"));
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Next field as (number, content); wire types as gogo-protobuf accepts them.
    fn field(&mut self) -> Result<Option<(u64, Field<'a>)>, DecodeError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let (num, wire) = (tag >> 3, tag & 7);
        if num == 0 {
            return Err(DecodeError::Protobuf("illegal tag 0"));
        }
        let f = match wire {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.skip(8)?;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| DecodeError::Protobuf("invalid length"))?;
                Field::Bytes(self.skip(len)?)
            }
            5 => {
                self.skip(4)?;
                Field::Fixed
            }
            _ => return Err(DecodeError::Protobuf("unsupported wire type")),
        };
        Ok(Some((num, f)))
    }
}

fn wrong_type() -> DecodeError {
    DecodeError::Protobuf("wrong wire type for a known field")
}

pub fn decode_key_value(buf: &[u8]) -> Result<KeyValue<'_>, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let mut kv = KeyValue::default();
    while let Some((num, f)) = r.field()? {
        match (num, f) {
            (1, Field::Bytes(b)) => kv.key = b,
            (5, Field::Bytes(b)) => kv.value = b,
            (2, Field::Varint(v)) => kv.create_revision = v as i64,
            (3, Field::Varint(v)) => kv.mod_revision = v as i64,
            (4, Field::Varint(v)) => kv.version = v as i64,
            (6, Field::Varint(v)) => kv.lease = v as i64,
            (1..=6, _) => return Err(wrong_type()),
            _ => {}
        }
    }
    Ok(kv)
}

/// Only the user key of a `KeyValue`: the hot path of live-key counting.
pub fn key_of(buf: &[u8]) -> Result<&[u8], DecodeError> {
    decode_key_value(buf).map(|kv| kv.key)
}

pub fn decode_lease(buf: &[u8]) -> Result<Lease, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let mut l = Lease::default();
    while let Some((num, f)) = r.field()? {
        match (num, f) {
            (1, Field::Varint(v)) => l.id = v as i64,
            (2, Field::Varint(v)) => l.ttl = v as i64,
            (3, Field::Varint(v)) => l.remaining_ttl = v as i64,
            (1..=3, _) => return Err(wrong_type()),
            _ => {}
        }
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_put_and_rejects_a_cut_one() {
        // key "/a", create 2, mod 3, version 1, value "v", lease 7
        let bytes = [
            0x0a, 2, b'/', b'a', 0x10, 2, 0x18, 3, 0x20, 1, 0x2a, 1, b'v', 0x30, 7,
        ];
        let kv = decode_key_value(&bytes).expect("valid KeyValue");
        assert_eq!(
            (
                kv.key,
                kv.create_revision,
                kv.mod_revision,
                kv.version,
                kv.value,
                kv.lease
            ),
            (&b"/a"[..], 2, 3, 1, &b"v"[..], 7)
        );
        assert!(decode_key_value(&bytes[..3]).is_err());
        assert!(decode_key_value(&[0x08, 0xff]).is_err());
    }

    #[test]
    fn revision_keys() {
        let mut k = vec![0, 0, 0, 0, 0, 0, 0, 5, b'_', 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(
            parse_revision_key(&k).expect("valid key"),
            RevisionKey {
                main: 5,
                sub: 1,
                tombstone: false
            }
        );
        k.push(b't');
        assert!(parse_revision_key(&k).expect("valid key").tombstone);
        assert!(parse_revision_key(&k[..10]).is_err());
        assert_eq!(main_revision_lenient(&k), Some(5));
    }
}
