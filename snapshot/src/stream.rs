//! Checking a snapshot while it is being received, without holding it.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::snapshot::{TRAILER_LEN, has_trailer};
use crate::verify::hex;

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
    /// The same digest as bytes, for [`Snapshot::inspect`].
    #[serde(skip)]
    pub database_digest: [u8; 32],
    /// sha256 of the whole stream (trailer included), hex.
    pub file_sha256: String,
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

    /// One pass gives both digests: the hash state before the held-back 32 bytes is the
    /// database part's (when they are a trailer), and feeding them on gives the whole file's.
    pub fn finish(self) -> StreamCheck {
        let present = has_trailer(self.len);
        let before_tail = self.sha.clone().finalize();
        let mut whole = self.sha;
        whole.update(&self.tail);
        let whole: [u8; 32] = whole.finalize().into();
        if present {
            StreamCheck {
                len: self.len,
                trailer_present: true,
                database_sha256: hex(&before_tail),
                database_digest: before_tail.into(),
                file_sha256: hex(&whole),
                trailer_matches: Some(before_tail.as_slice() == self.tail.as_slice()),
            }
        } else {
            StreamCheck {
                len: self.len,
                trailer_present: false,
                database_sha256: hex(&whole),
                database_digest: whole,
                file_sha256: hex(&whole),
                trailer_matches: None,
            }
        }
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
            assert_eq!(
                r.database_digest.as_slice(),
                Sha256::digest(&body).as_slice()
            );
            assert_eq!(r.file_sha256, hex(&Sha256::digest(&file)), "chunk {chunk}");
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
        assert_eq!(r.file_sha256, r.database_sha256);
    }
}
