//! The talosctl command an SRE would type for each snapshot action, shown beside the result so
//! the console never hides what it did on the SRE's behalf.

use talos_dr_shared::snapshots::{SnapshotEntry, SnapshotEntryKind};

/// Where Talos keeps the etcd database a raw copy reads.
pub const ETCD_DATABASE_PATH: &str = "/var/lib/etcd/member/snap/db";

pub fn take(node: &str) -> String {
    format!("talosctl -n {node} etcd snapshot db.snapshot")
}

pub fn raw_copy(node: &str) -> String {
    format!("talosctl -n {node} read {ETCD_DATABASE_PATH} > db")
}

/// How the file would be used: the bootstrap that recovers from it (raw copies need the
/// skip-hash-check flag).
pub fn restore(node: &str, raw: bool) -> String {
    let file = if raw { "db" } else { "db.snapshot" };
    let skip = if raw {
        " --recover-skip-hash-check"
    } else {
        ""
    };
    format!("talosctl -n {node} bootstrap --recover-from=./{file}{skip}")
}

pub fn for_entry(entry: &SnapshotEntry) -> String {
    let node = entry.node.as_deref().unwrap_or("<node>");
    match entry.kind {
        SnapshotEntryKind::Snapshot => take(node),
        SnapshotEntryKind::RawCopy => raw_copy(node),
        SnapshotEntryKind::Upload => {
            let raw = entry.stored_as == Some(SnapshotEntryKind::RawCopy);
            restore(node, raw)
        }
    }
}
