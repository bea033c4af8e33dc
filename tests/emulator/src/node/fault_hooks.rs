//! Fault hooks for the control interface and tests: a killed etcd, corrupted etcd data, a
//! snapshot stream cut short.

use std::path::Path;
use std::time::Duration;

use super::etcd_service::EtcdStart;
use super::{ETCD, Node, SnapshotCut, etcd_process, lock};

impl Node {
    /// SIGKILLs the etcd process; the service stays down until `start_etcd` or a reboot.
    pub async fn kill_etcd(&self) {
        let pid = {
            let mut state = lock(&self.inner.state);
            state.etcd_held_down = true;
            state.etcd_pid
        };
        if let Some(pid) = pid {
            etcd_process::signal(pid, libc::SIGKILL);
        }
        // Wait until the service saw the exit, so callers can rely on etcd being down.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while lock(&self.inner.state).etcd_pid.is_some() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Lifts a `kill_etcd`; on a powered-on control-plane node without an etcd service, starts one.
    pub async fn start_etcd(&self) {
        let needs_service = {
            let mut state = lock(&self.inner.state);
            state.etcd_held_down = false;
            state.powered_on
                && state.etcd_task.is_none()
                && state
                    .active_config
                    .as_ref()
                    .is_some_and(|c| c.machine_type.is_control_plane())
        };
        self.inner.etcd_release.notify_one();
        if needs_service {
            self.inner.services.register(ETCD);
            self.spawn_etcd_service(EtcdStart::Boot);
        }
    }

    /// Flips bytes in both bbolt meta pages of `member/snap/db` so etcd refuses the file, then
    /// lets the service restart into the failure.
    pub async fn corrupt_etcd_data(&self) {
        self.kill_etcd().await;
        let db = self.inner.volumes.etcd_data().join("member/snap/db");
        if let Err(error) = corrupt_bbolt_meta(&db) {
            tracing::warn!(node = %self.inner.hostname, path = %db.display(), %error, "cannot corrupt etcd data");
        }
        self.start_etcd().await;
    }

    /// The next EtcdSnapshot ends after `after_bytes`, with an error status or silently.
    pub fn cut_next_snapshot(&self, after_bytes: u64, with_error: bool) {
        lock(&self.inner.state).snapshot_cut = Some(SnapshotCut {
            after_bytes,
            with_error,
        });
    }
}

fn corrupt_bbolt_meta(db: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(db)?;
    // Page size is 4096 on every etcd db here; meta pages are pages 0 and 1, their fields start at 16.
    for offset in [16u64, 4096 + 16] {
        let mut bytes = [0u8; 32];
        file.read_exact_at(&mut bytes, offset)?;
        for b in &mut bytes {
            *b ^= 0xa5;
        }
        file.write_all_at(&bytes, offset)?;
    }
    file.sync_all()
}
