//! `etcdctl snapshot status`, byte for byte.

use serde::Serialize;

use crate::bbolt::BoltFile;
use crate::scan::{BucketSummary, MetaValues, Scan, ScanOptions, scan};
use crate::snapshot::{Snapshot, SnapshotError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotStatus {
    /// CRC-32C over bucket names, keys and values (etcd's status hash).
    pub hash: u32,
    /// Main revision of the last `key`-bucket entry (what etcdctl prints).
    pub revision: i64,
    /// `max(revision, finishedCompactRev)`: the revision etcd resumes from after a restore.
    pub effective_revision: i64,
    /// Total keys as etcd ≤3.5 counts them: entries in all buckets.
    pub total_key_entries: u64,
    /// Total keys as etcd ≥3.6 counts them: live user keys (`None` when not asked for).
    pub live_keys: Option<u64>,
    /// `meta.pgid × pageSize` (bbolt high-water mark), not the file length.
    pub total_size: u64,
    pub page_size: u32,
    pub compact_revision: Option<i64>,
    pub scheduled_compact_revision: Option<i64>,
    pub consistent_index: Option<u64>,
    pub term: Option<u64>,
    /// `meta/storageVersion`, written by etcd ≥3.6.
    pub storage_version: Option<String>,
    pub buckets: Vec<BucketSummary>,
    /// Whether etcd 3.6 would refuse to compute status (undecodable `key` entries).
    pub etcd_36_error: Option<String>,
}

impl Snapshot {
    /// What `etcdctl snapshot status` reports, with both total-key counts; fails where etcdctl
    /// fails (integrity check).
    pub fn status(&self) -> Result<SnapshotStatus, SnapshotError> {
        self.status_for(StatusSemantics::Etcd36)
    }

    /// Like [`Snapshot::status`]; with `Etcd35` the values are not decoded and live keys not
    /// counted (`live_keys` is `None`), which is what etcd ≤3.5 does and roughly halves the time.
    pub fn status_for(&self, semantics: StatusSemantics) -> Result<SnapshotStatus, SnapshotError> {
        let bolt = self.bolt()?;
        let full = semantics == StatusSemantics::Etcd36;
        let s = scan(
            &bolt,
            ScanOptions {
                decode_values: full,
                live_keys: full,
                contents: false,
            },
        );
        self.status_from(&bolt, &s)
    }

    /// The status from a walk already made.
    pub(crate) fn status_from(
        &self,
        bolt: &BoltFile<'_>,
        s: &Scan<'_>,
    ) -> Result<SnapshotStatus, SnapshotError> {
        let breaking: Vec<_> = s
            .problems
            .iter()
            .filter(|p| p.kind.breaks_etcd_34())
            .collect();
        if let Some(first) = breaking.first() {
            let count = if s.problems.len() as u64 == s.problem_count {
                breaking.len() as u64
            } else {
                s.problem_count
            };
            return Err(SnapshotError::Integrity {
                path: self.path().to_path_buf(),
                count,
                first: first.message.clone(),
            });
        }
        if let Some(e) = s.status_errors.first() {
            return Err(SnapshotError::Content {
                path: self.path().to_path_buf(),
                message: e.clone(),
            });
        }
        let MetaValues {
            consistent_index,
            term,
            finished_compact_revision,
            scheduled_compact_revision,
            storage_version,
            ..
        } = s.meta.clone();
        let etcd_36_error = (s.undecodable_for_36 > 0).then(|| {
            format!(
                "{} key-bucket entries cannot be decoded",
                s.undecodable_for_36
            )
        });
        Ok(SnapshotStatus {
            hash: s.hash,
            revision: s.revision,
            effective_revision: s.revision.max(finished_compact_revision.unwrap_or(0)),
            total_key_entries: s.entries,
            live_keys: s.live_keys,
            total_size: bolt.total_size(),
            page_size: bolt.meta().page_size,
            compact_revision: finished_compact_revision,
            scheduled_compact_revision,
            consistent_index,
            term,
            storage_version,
            buckets: s.buckets.clone(),
            etcd_36_error,
        })
    }
}

/// Which etcd's `snapshot status` output to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusSemantics {
    /// etcd ≤3.5 (`etcdctl snapshot status` 3.4, `etcdutl` 3.5): total keys = all entries.
    Etcd35,
    /// etcd ≥3.6 (`etcdutl snapshot status`): live keys and a version column.
    Etcd36,
}

impl SnapshotStatus {
    fn total_key(&self, sem: StatusSemantics) -> u64 {
        match sem {
            StatusSemantics::Etcd35 => self.total_key_entries,
            StatusSemantics::Etcd36 => self.live_keys.unwrap_or(0),
        }
    }

    fn version(&self) -> &str {
        // etcd 3.6 parses the stored value as semver and prints major.minor.patch.
        self.storage_version
            .as_deref()
            .filter(|v| is_semver(v))
            .unwrap_or("")
    }

    fn row(&self, sem: StatusSemantics) -> Vec<String> {
        let mut row = vec![
            format!("{:x}", self.hash),
            self.revision.to_string(),
            self.total_key(sem).to_string(),
            humanize_bytes(self.total_size),
        ];
        if sem == StatusSemantics::Etcd36 {
            row.push(self.version().to_string());
        }
        row
    }

    /// `-w simple`
    pub fn format_simple(&self, sem: StatusSemantics) -> String {
        format!("{}\n", self.row(sem).join(", "))
    }

    /// `-w json` (Go's encoding/json of etcd's Status struct).
    pub fn format_json(&self, sem: StatusSemantics) -> String {
        let mut s = format!(
            "{{\"hash\":{},\"revision\":{},\"totalKey\":{},\"totalSize\":{}",
            self.hash,
            self.revision,
            self.total_key(sem),
            self.total_size
        );
        if sem == StatusSemantics::Etcd36 {
            s.push_str(&format!(
                ",\"version\":{}",
                serde_json::Value::from(self.version())
            ));
        }
        s.push_str("}\n");
        s
    }

    /// `-w fields`
    pub fn format_fields(&self, sem: StatusSemantics) -> String {
        let mut s = format!(
            "\"Hash\" : {}\n\"Revision\" : {}\n\"Keys\" : {}\n\"Size\" : {}\n",
            self.hash,
            self.revision,
            self.total_key(sem),
            self.total_size
        );
        if sem == StatusSemantics::Etcd36 {
            s.push_str(&format!("\"Version\" : {}\n", self.version()));
        }
        s
    }

    /// `-w table` (olekukonko/tablewriter, right-aligned cells, centred header).
    pub fn format_table(&self, sem: StatusSemantics) -> String {
        let mut header = vec!["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"];
        if sem == StatusSemantics::Etcd36 {
            header.push("VERSION");
        }
        let row = self.row(sem);
        let widths: Vec<usize> = header
            .iter()
            .zip(&row)
            .map(|(h, c)| h.len().max(c.len()))
            .collect();
        let line: String = widths
            .iter()
            .map(|w| format!("+{}", "-".repeat(w + 2)))
            .collect::<String>()
            + "+\n";
        let mut out = line.clone();
        for (h, w) in header.iter().zip(&widths) {
            let gap = w - h.len();
            let left = gap / 2;
            out.push_str(&format!(
                "| {}{}{} ",
                " ".repeat(left),
                h,
                " ".repeat(gap - left)
            ));
        }
        out.push_str("|\n");
        out.push_str(&line);
        for (c, w) in row.iter().zip(&widths) {
            out.push_str(&format!("| {c:>w$} "));
        }
        out.push_str("|\n");
        out.push_str(&line);
        out
    }
}

fn is_semver(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// go-humanize `Bytes()`: SI units, one decimal below 10.
pub fn humanize_bytes(s: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if s < 10 {
        return format!("{s} B");
    }
    let f = s as f64;
    let e = (f.ln() / 1000f64.ln()).floor();
    let unit = UNITS.get(e as usize).copied().unwrap_or("EB");
    let val = (f / 1000f64.powf(e) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {unit}")
    } else {
        format!("{val:.0} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_matches_go_humanize() {
        assert_eq!(humanize_bytes(675840), "676 kB");
        assert_eq!(humanize_bytes(733184), "733 kB");
        assert_eq!(humanize_bytes(3031040), "3.0 MB");
        assert_eq!(humanize_bytes(4096), "4.1 kB");
        assert_eq!(humanize_bytes(999999), "1000 kB");
        assert_eq!(humanize_bytes(9), "9 B");
        assert_eq!(humanize_bytes(20480), "20 kB");
    }
}
