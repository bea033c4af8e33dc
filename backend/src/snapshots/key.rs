//! Snapshot keys: `<cluster>/<yyyy>/<mm>/<dd>/<id>.snapshot`, generated here and checked when
//! handed back, so no caller-supplied name can reach outside the store.

use std::fmt;

use object_store::path::Path as ObjectPath;

use super::store::StoreError;

/// The key of a stored snapshot: `<cluster>/<yyyy>/<mm>/<dd>/<id>.snapshot`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct SnapshotKey(String);

/// Characters allowed in a cluster name or a snapshot id: nothing a path or URL treats specially.
pub(super) fn plain_segment(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("it is empty");
    }
    if s.len() > 128 {
        return Err("it is longer than 128 characters");
    }
    if s.starts_with('.') {
        return Err("it starts with a dot");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("only letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}

impl SnapshotKey {
    /// The key for a snapshot of `cluster` taken at `taken_at_ms` (Unix milliseconds, UTC day)
    /// with the caller's unique `id`.
    pub fn new(
        cluster: &str,
        taken_at_ms: i64,
        id: &SnapshotId,
    ) -> Result<SnapshotKey, StoreError> {
        plain_segment(cluster).map_err(|reason| StoreError::BadCluster {
            name: cluster.to_string(),
            reason,
        })?;
        let date =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(taken_at_ms) * 1_000_000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        Ok(SnapshotKey(format!(
            "{cluster}/{:04}/{:02}/{:02}/{}.snapshot",
            date.year(),
            u8::from(date.month()),
            date.day(),
            id.0
        )))
    }

    /// Accepts a key a caller hands back (from the history table or a URL) only if it has
    /// exactly the shape [`SnapshotKey::new`] produces: no `..`, no absolute path, no odd bytes.
    pub fn parse(name: &str) -> Result<SnapshotKey, StoreError> {
        let bad = |reason| StoreError::BadKey {
            name: name.to_string(),
            reason,
        };
        if name.starts_with('/') || name.starts_with('\\') {
            return Err(bad("absolute paths are not snapshot names"));
        }
        if name.split(['/', '\\']).any(|s| s == ".." || s == ".") {
            return Err(bad("'.' and '..' are not allowed in snapshot names"));
        }
        let segments: Vec<&str> = name.split('/').collect();
        let [cluster, year, month, day, file] = segments.as_slice() else {
            return Err(bad("expected <cluster>/<yyyy>/<mm>/<dd>/<id>.snapshot"));
        };
        plain_segment(cluster).map_err(|_| bad("the cluster part is not a plain name"))?;
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(month, 2) || !digits(day, 2) {
            return Err(bad("the date part must be yyyy/mm/dd"));
        }
        let id = file
            .strip_suffix(".snapshot")
            .ok_or_else(|| bad("the name must end in .snapshot"))?;
        plain_segment(id).map_err(|_| bad("the id part is not a plain name"))?;
        Ok(SnapshotKey(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(super) fn object_path(&self) -> ObjectPath {
        ObjectPath::from(self.0.as_str())
    }
}

impl fmt::Display for SnapshotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A unique id for one stored snapshot (random unless a caller supplies one, e.g. in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotId(String);

impl SnapshotId {
    pub fn random() -> SnapshotId {
        use rand::Rng;
        let bytes: [u8; 10] = rand::thread_rng().r#gen();
        SnapshotId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn parse(id: &str) -> Result<SnapshotId, StoreError> {
        plain_segment(id).map_err(|reason| StoreError::BadKey {
            name: id.to_string(),
            reason,
        })?;
        Ok(SnapshotId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
