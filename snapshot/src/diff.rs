//! Two snapshots compared: what restoring OLD instead of NEW would lose or bring back.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::contents::classify;
use crate::snapshot::{Snapshot, SnapshotError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyChangeKind {
    /// Only in NEW: restoring OLD loses it.
    Added,
    /// Only in OLD (deleted since): restoring OLD brings it back.
    Removed,
    /// In both with different values: restoring OLD reverts it.
    Changed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyChange {
    pub key: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub change: KeyChangeKind,
    pub old_mod_revision: Option<i64>,
    pub new_mod_revision: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChangeCounts {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffGroup {
    pub resource: String,
    pub namespace: Option<String>,
    #[serde(flatten)]
    pub counts: ChangeCounts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotDiff {
    pub old_revision: i64,
    pub new_revision: i64,
    pub totals: ChangeCounts,
    pub groups: Vec<DiffGroup>,
    /// One page of changed keys, sorted by key.
    pub keys: Vec<KeyChange>,
    pub page: usize,
    pub page_size: usize,
    pub total_key_changes: u64,
}

impl SnapshotDiff {
    /// The summary in an SRE's words.
    pub fn summary(&self) -> String {
        let t = &self.totals;
        format!(
            "restoring OLD (revision {}) instead of NEW (revision {}) loses {} keys, brings back {} deleted keys and reverts {} keys to older values",
            self.old_revision, self.new_revision, t.added, t.removed, t.changed
        )
    }
}

/// A changed key with its old and new mod revisions.
type Change<'a> = (&'a [u8], KeyChangeKind, Option<i64>, Option<i64>);

/// Compares the live key sets of two snapshots; `page`/`page_size` select the listed names.
pub fn diff(
    old: &Snapshot,
    new: &Snapshot,
    page: usize,
    page_size: usize,
) -> Result<SnapshotDiff, SnapshotError> {
    let old_live = old.live_keys()?;
    let new_live = new.live_keys()?;
    let mut changes: Vec<Change<'_>> = Vec::new();
    for (k, n) in &new_live.keys {
        match old_live.keys.get(k) {
            None => changes.push((k, KeyChangeKind::Added, None, Some(n.mod_revision))),
            Some(o)
                if o.mod_revision != n.mod_revision || o.value != n.value || o.lease != n.lease =>
            {
                changes.push((
                    k,
                    KeyChangeKind::Changed,
                    Some(o.mod_revision),
                    Some(n.mod_revision),
                ))
            }
            Some(_) => {}
        }
    }
    for (k, o) in &old_live.keys {
        if !new_live.keys.contains_key(k) {
            changes.push((k, KeyChangeKind::Removed, Some(o.mod_revision), None));
        }
    }
    changes.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut totals = ChangeCounts::default();
    let mut groups: BTreeMap<(String, Option<String>), ChangeCounts> = BTreeMap::new();
    for (k, kind, ..) in &changes {
        let p = classify(k);
        let g = groups.entry((p.resource, p.namespace)).or_default();
        for c in [&mut totals, g] {
            match kind {
                KeyChangeKind::Added => c.added += 1,
                KeyChangeKind::Removed => c.removed += 1,
                KeyChangeKind::Changed => c.changed += 1,
            }
        }
    }
    let page_size = page_size.max(1);
    let keys = changes
        .iter()
        .skip(page.saturating_mul(page_size))
        .take(page_size)
        .map(|(k, change, o, n)| {
            let p = classify(k);
            KeyChange {
                key: String::from_utf8_lossy(k).into_owned(),
                resource: p.resource,
                namespace: p.namespace,
                change: *change,
                old_mod_revision: *o,
                new_mod_revision: *n,
            }
        })
        .collect();
    Ok(SnapshotDiff {
        old_revision: old_live.revision,
        new_revision: new_live.revision,
        totals,
        groups: groups
            .into_iter()
            .map(|((resource, namespace), counts)| DiffGroup {
                resource,
                namespace,
                counts,
            })
            .collect(),
        keys,
        page,
        page_size,
        total_key_changes: changes.len() as u64,
    })
}
