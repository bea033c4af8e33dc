//! Fault hooks for the control interface and tests: a killed etcd, corrupted etcd data, a
//! full etcd (NOSPACE), an etcd split off into a cluster of its own, a snapshot stream cut short.

use std::path::Path;
use std::time::Duration;

use super::etcd_service::EtcdStart;
use super::service::ServiceState;
use super::volumes::wipe_contents;
use super::{ETCD, Node, NodeError, SnapshotCut, etcd_process, lock};

/// One value per put: under etcd's default 1.5 MiB request limit.
const FILL_VALUE_BYTES: usize = 1 << 20;
/// etcd's default backend quota, when the cluster was started without one.
const DEFAULT_QUOTA_BYTES: u64 = 2 << 30;

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

    /// The machine is replaced by a new one: every volume wiped (STATE with its config too) and
    /// booted into maintenance mode, where the first ApplyConfiguration configures it, as
    /// `talosctl apply-config --insecure` does for a re-created node. No Talos call is counted.
    pub async fn replace_machine(&self) {
        let _guard = self.inner.lifecycle.lock().await;
        self.stop_services().await;
        let volumes = &self.inner.volumes;
        for target in [volumes.ephemeral(), volumes.etcd_data(), volumes.state()] {
            if let Err(error) = wipe_contents(&target) {
                tracing::error!(node = %self.inner.hostname, path = %target.display(), %error, "wipe failed");
            }
        }
        self.boot(EtcdStart::Boot);
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

    /// Puts 1 MiB values through this node's etcd until etcd refuses with "database space
    /// exceeded". etcd raises NOSPACE itself, for each member whose backend crossed the quota
    /// (every member checks as it applies, so it need not be this node's).
    pub async fn raise_nospace(&self) -> Result<(), NodeError> {
        let quota = self.inner.etcd_quota_bytes.unwrap_or(DEFAULT_QUOTA_BYTES);
        let attempts = quota / FILL_VALUE_BYTES as u64 * 2 + 64;
        let value = vec![b'x'; FILL_VALUE_BYTES];
        for i in 0..attempts {
            let key = format!("/emulator/nospace/{}/{i:08}", self.inner.hostname);
            match self.inner.local_etcd.put(&key, &value, 0).await {
                Ok(()) => {}
                Err(status) if status.message().contains("database space exceeded") => {
                    return Ok(());
                }
                Err(status) => return Err(NodeError::Etcd(status.message().to_string())),
            }
        }
        Err(NodeError::Etcd(format!(
            "no NOSPACE after {attempts} puts of {FILL_VALUE_BYTES} bytes (quota {quota} bytes)"
        )))
    }

    /// Stops etcd, wipes its data and bootstraps a one-member cluster here, as a mistaken second
    /// `talosctl bootstrap` does: this node lists only itself, the others keep its old member.
    pub async fn split_off_etcd(&self) {
        self.stop_etcd_service(ServiceState::Finished, "Service finished successfully")
            .await;
        lock(&self.inner.state).etcd_held_down = false;
        let data = self.inner.volumes.etcd_data();
        if let Err(error) = wipe_contents(&data) {
            tracing::warn!(node = %self.inner.hostname, path = %data.display(), %error, "cannot wipe etcd data");
        }
        self.inner.kmsg.talos("bootstrapping etcd");
        self.spawn_etcd_service(EtcdStart::Bootstrap {
            recover: false,
            skip_hash_check: false,
        });
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
