//! What the structural check finds.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A page id at or past the high-water mark (`page N: out of bounds`).
    OutOfBounds,
    /// A page the meta page counts but the file does not contain (truncation).
    BeyondEndOfFile,
    /// A page reached twice (`page N: multiple references`); also how cycles show up.
    MultipleReferences,
    /// Neither a branch nor a leaf page where one is needed (`invalid type`).
    InvalidType,
    /// An element, key or value that does not fit in its page.
    BadElement,
    /// A bucket value too short for its header, or a bad inline bucket image.
    BadBucket,
    /// More levels than any real tree has.
    TooDeep,
    /// Keys not strictly increasing (checked by bbolt ≥1.3.7, not by etcd 3.4's bbolt 1.3.6).
    KeyOrder,
    /// The page header names another page id or a mixed type (bbolt ≥1.3.7 only).
    HeaderMismatch,
}

impl ProblemKind {
    /// Whether etcd 3.4 (bbolt 1.3.6) fails to open the database, rather than only a newer
    /// bbolt's stricter check complaining.
    pub fn breaks_etcd_34(self) -> bool {
        !matches!(self, ProblemKind::KeyOrder | ProblemKind::HeaderMismatch)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub page: Option<u64>,
    pub message: String,
}

/// A key for messages: text when printable, else hex.
pub fn show(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
        _ => key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}
