//! Where a control-plane node keeps etcd's data, and so which volume its reset must wipe.
//!
//! Since Talos v1.10 `/var/lib/etcd` is a system volume of its own, `ETCD`: a directory on
//! EPHEMERAL by default (wiping EPHEMERAL wipes etcd's data, as the recovery guide assumes), or a
//! partition or disk of its own when the cluster configures one, which a wipe of EPHEMERAL leaves
//! untouched. Talos' own tests read the node's `VolumeStatuses.block.talos.dev` `ETCD` to choose.

use serde::{Deserialize, Serialize};

/// The label of the volume etcd keeps its data on since Talos v1.10.
pub const ETCD_LABEL: &str = "ETCD";
/// The volume mounted at `/var`; etcd's data lives there unless the node has an ETCD partition.
pub const EPHEMERAL_LABEL: &str = "EPHEMERAL";

/// What the node's `VolumeStatuses.block.talos.dev` `ETCD` (namespace `runtime`) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EtcdDataVolume {
    /// A partition of its own (type `partition`): only a wipe of `ETCD` removes etcd's data.
    Partition {
        /// The block device, e.g. `/dev/sdb1`, when the node names one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
    },
    /// A whole disk of its own (type `disk`): like a partition.
    Disk {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
    },
    /// A directory on EPHEMERAL (type `directory`, the default).
    Directory,
    /// The node has no ETCD volume (Talos before v1.10): etcd's data is a folder on EPHEMERAL.
    Absent,
    /// The volume could not be read, or is of a type etcd's data is not expected on.
    Unreadable { reason: String },
}

impl EtcdDataVolume {
    /// The label the reset wipes. Never empty: an empty wipe list wipes the whole system disk.
    ///
    /// A volume that could not be read gets EPHEMERAL: it is what the recovery guide wipes and
    /// where etcd's data is on every default install and every Talos before v1.10, while a wipe
    /// of `ETCD` is refused by every Talos up to v1.13 when ETCD is a directory (and by every
    /// Talos before v1.10, which has no such volume). The step says so loudly, so whoever
    /// approves it checks the node first.
    pub fn wipe_label(&self) -> &'static str {
        match self {
            Self::Partition { .. } | Self::Disk { .. } => ETCD_LABEL,
            Self::Directory | Self::Absent | Self::Unreadable { .. } => EPHEMERAL_LABEL,
        }
    }

    /// Whether the label was chosen without knowing where etcd's data is.
    pub fn is_guess(&self) -> bool {
        matches!(self, Self::Unreadable { .. })
    }

    /// Why the reset wipes [`Self::wipe_label`], in the SRE's words; `address` is the node's.
    pub fn wipe_reason(&self, address: &str) -> String {
        match self {
            Self::Partition { location } | Self::Disk { location } => {
                let kind = if matches!(self, Self::Disk { .. }) {
                    "disk"
                } else {
                    "partition"
                };
                let on = location
                    .as_deref()
                    .filter(|l| !l.is_empty())
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default();
                format!(
                    "etcd's data is on a {kind} of its own, label ETCD{on}: wiping EPHEMERAL would leave it in place"
                )
            }
            Self::Directory => {
                "etcd's data is a directory on EPHEMERAL (volume ETCD, type directory)".to_string()
            }
            Self::Absent => {
                "the node has no ETCD volume (Talos before v1.10): etcd's data is on EPHEMERAL"
                    .to_string()
            }
            Self::Unreadable { reason } => format!(
                "could not read where etcd keeps its data ({reason}): EPHEMERAL is wiped as on a default install; \
                 check `talosctl -n {address} get volumestatus ETCD` before approving: if its type is partition or \
                 disk, this reset would leave etcd's data in place"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_and_disks_wipe_etcd_everything_else_ephemeral() {
        let partition = EtcdDataVolume::Partition {
            location: Some("/dev/sdb1".into()),
        };
        assert_eq!(partition.wipe_label(), "ETCD");
        assert!(partition.wipe_reason("10.0.0.2").contains("/dev/sdb1"));
        assert_eq!(EtcdDataVolume::Disk { location: None }.wipe_label(), "ETCD");
        assert_eq!(EtcdDataVolume::Directory.wipe_label(), "EPHEMERAL");
        assert_eq!(EtcdDataVolume::Absent.wipe_label(), "EPHEMERAL");
        assert!(
            EtcdDataVolume::Absent
                .wipe_reason("10.0.0.2")
                .contains("before v1.10")
        );
        let unreadable = EtcdDataVolume::Unreadable {
            reason: "permission denied".into(),
        };
        assert_eq!(unreadable.wipe_label(), "EPHEMERAL");
        assert!(unreadable.is_guess());
        let words = unreadable.wipe_reason("10.0.0.2");
        assert!(words.contains("permission denied"), "{words}");
        assert!(
            words.contains("talosctl -n 10.0.0.2 get volumestatus ETCD"),
            "{words}"
        );
    }

    #[test]
    fn serialized_with_a_kind_tag() {
        let json = serde_json::to_string(&EtcdDataVolume::Partition {
            location: Some("/dev/sdb1".into()),
        })
        .expect("json");
        assert_eq!(json, r#"{"kind":"partition","location":"/dev/sdb1"}"#);
        let back: EtcdDataVolume = serde_json::from_str(r#"{"kind":"absent"}"#).expect("parse");
        assert_eq!(back, EtcdDataVolume::Absent);
    }
}
