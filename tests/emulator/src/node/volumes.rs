//! Where a node's Talos volumes live on the host, and how Talos absolute paths map onto them.

use std::path::{Path, PathBuf};

use super::cluster::EtcdVolume;

/// Talos' etcd data directory and the EtcdRecover upload target.
pub const ETCD_DATA_PATH: &str = "/var/lib/etcd";
pub const ETCD_SNAPSHOT_PATH: &str = "/var/lib/etcd.snapshot";
pub const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";
pub const CONFIG_PATH: &str = "/system/state/config.yaml";

/// The system disk's partitions and their devices, in Talos' layout (the BIOS partition, which
/// has no volume status, left out).
pub const SYSTEM_PARTITIONS: [(&str, &str); 5] = [
    ("EFI", "/dev/sda1"),
    ("BOOT", "/dev/sda3"),
    ("META", "/dev/sda4"),
    ("STATE", "/dev/sda5"),
    ("EPHEMERAL", "/dev/sda6"),
];
/// Where a dedicated ETCD partition sits: on a second disk, as a VolumeConfig selecting it makes.
pub const ETCD_PARTITION_DEVICE: &str = "/dev/sdb1";

#[derive(Debug, Clone)]
pub struct NodeVolumes {
    pub root: PathBuf,
    pub etcd_volume: EtcdVolume,
}

impl NodeVolumes {
    pub fn new(root: PathBuf, etcd_volume: EtcdVolume) -> Self {
        Self { root, etcd_volume }
    }

    /// STATE: the machine configuration.
    pub fn state(&self) -> PathBuf {
        self.root.join("STATE")
    }
    /// EPHEMERAL, mounted at /var.
    pub fn ephemeral(&self) -> PathBuf {
        self.root.join("EPHEMERAL")
    }
    /// The ETCD volume: a directory on EPHEMERAL by default, a partition of its own when configured so.
    pub fn etcd_data(&self) -> PathBuf {
        match self.etcd_volume {
            EtcdVolume::Directory | EtcdVolume::Absent => self.ephemeral().join("lib/etcd"),
            EtcdVolume::Partition => self.root.join("ETCD"),
        }
    }
    pub fn var_lib(&self) -> PathBuf {
        self.ephemeral().join("lib")
    }
    pub fn etcd_snapshot(&self) -> PathBuf {
        self.var_lib().join("etcd.snapshot")
    }
    pub fn config_file(&self) -> PathBuf {
        self.state().join("config.yaml")
    }
    /// Where the etcd process's own log goes (Talos keeps container logs outside the kernel log).
    pub fn etcd_log(&self) -> PathBuf {
        self.root.join("etcd.log")
    }

    /// The volume labels this node has, as Reset validates them (its VolumeStatuses).
    pub fn has_label(&self, label: &str) -> bool {
        match label {
            "ETCD" => self.etcd_volume != EtcdVolume::Absent,
            other => SYSTEM_PARTITIONS.iter().any(|(l, _)| *l == other),
        }
    }

    /// Maps a Talos absolute path to the host; `None` for paths outside the emulated volumes.
    pub fn resolve(&self, talos_path: &str) -> Option<PathBuf> {
        let clean = Path::new(talos_path);
        if !clean.is_absolute()
            || clean
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return None;
        }
        let under = |prefix: &str| -> Option<PathBuf> {
            let rest = clean.strip_prefix(prefix).ok()?;
            Some(rest.to_path_buf())
        };
        if let Some(rest) = under(ETCD_DATA_PATH) {
            return Some(self.etcd_data().join(rest));
        }
        if let Some(rest) = under("/var") {
            return Some(self.ephemeral().join(rest));
        }
        if let Some(rest) = under("/system/state") {
            return Some(self.state().join(rest));
        }
        None
    }

    /// Host paths in etcd's own log lines, rewritten to what the node would print.
    pub fn to_talos_paths(&self, line: &str) -> String {
        let snapshot = self.etcd_snapshot();
        let data = self.etcd_data();
        line.replace(&snapshot.display().to_string(), ETCD_SNAPSHOT_PATH)
            .replace(&data.display().to_string(), ETCD_DATA_PATH)
    }

    pub fn create_layout(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.state())?;
        std::fs::create_dir_all(self.var_lib())?;
        std::fs::create_dir_all(self.ephemeral().join("log"))?;
        create_private_dir(&self.etcd_data())
    }
}

pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

/// Empties a folder but keeps it (a wiped volume is reformatted, not removed).
pub fn wipe_contents(path: &Path) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

pub fn dir_is_empty(path: &Path) -> bool {
    match std::fs::read_dir(path) {
        Ok(mut entries) => entries.next().is_none(),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn talos_paths_map_onto_the_volume_layout() {
        let dir = NodeVolumes::new(PathBuf::from("/n"), EtcdVolume::Directory);
        assert_eq!(
            dir.resolve("/var/lib/etcd/member/snap/db"),
            Some(PathBuf::from("/n/EPHEMERAL/lib/etcd/member/snap/db"))
        );
        assert_eq!(
            dir.resolve("/var/lib/etcd.snapshot"),
            Some(PathBuf::from("/n/EPHEMERAL/lib/etcd.snapshot"))
        );
        assert_eq!(
            dir.resolve("/system/state/config.yaml"),
            Some(PathBuf::from("/n/STATE/config.yaml"))
        );

        let partition = NodeVolumes::new(PathBuf::from("/n"), EtcdVolume::Partition);
        assert_eq!(
            partition.resolve("/var/lib/etcd/member/snap/db"),
            Some(PathBuf::from("/n/ETCD/member/snap/db"))
        );
        assert_eq!(
            partition.resolve("/var/lib/etcd.snapshot"),
            Some(PathBuf::from("/n/EPHEMERAL/lib/etcd.snapshot"))
        );
    }

    #[test]
    fn paths_outside_the_volumes_or_climbing_out_are_refused() {
        let volumes = NodeVolumes::new(PathBuf::from("/n"), EtcdVolume::Directory);
        assert_eq!(volumes.resolve("var/lib/etcd"), None);
        assert_eq!(volumes.resolve("/var/../etc/shadow"), None);
        assert_eq!(volumes.resolve("/etc/hostname"), None);
    }

    #[test]
    fn etcd_log_paths_are_rewritten_to_talos_paths() {
        let volumes = NodeVolumes::new(PathBuf::from("/n"), EtcdVolume::Directory);
        let line = r#"{"msg":"restored snapshot","path":"/n/EPHEMERAL/lib/etcd.snapshot","data-dir":"/n/EPHEMERAL/lib/etcd"}"#;
        assert_eq!(
            volumes.to_talos_paths(line),
            r#"{"msg":"restored snapshot","path":"/var/lib/etcd.snapshot","data-dir":"/var/lib/etcd"}"#
        );
    }
}
