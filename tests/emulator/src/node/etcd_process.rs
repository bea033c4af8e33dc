//! Spawning and stopping the real `etcd` process behind a node's etcd service.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::NodeInner;

/// Raft timings much shorter than etcd's defaults so elections settle within a test's patience.
const HEARTBEAT_MS: &str = "50";
const ELECTION_MS: &str = "500";
/// SIGTERM'd etcd members can take seconds to exit while peers are gone; give up sooner.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How etcd is told about its cluster on this start.
#[derive(Debug, Clone)]
pub enum ClusterFlags {
    /// Existing data directory: etcd knows its cluster from the WAL.
    FromDataDir,
    /// `--initial-cluster ... --initial-cluster-state new|existing`.
    Initial { cluster: String, existing: bool },
}

pub fn spawn(node: &NodeInner, flags: &ClusterFlags) -> std::io::Result<Child> {
    let data_dir = node.volumes.etcd_data();
    let client_url = node.client_url();
    let peer_url = node.peer_url();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(node.volumes.etcd_log())?;
    let mut command = Command::new("etcd");
    command
        .arg("--name")
        .arg(&node.hostname)
        .arg("--data-dir")
        .arg(&data_dir)
        .args([
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
        ])
        .args([
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
        ])
        .args([
            "--heartbeat-interval",
            HEARTBEAT_MS,
            "--election-timeout",
            ELECTION_MS,
        ])
        .args(["--logger", "zap", "--log-outputs", "stderr"]);
    if let Some(quota) = node.etcd_quota_bytes {
        command.arg(format!("--quota-backend-bytes={quota}"));
    }
    match flags {
        ClusterFlags::FromDataDir => {
            // etcd insists its own name appears in --initial-cluster even when it is ignored.
            command
                .arg("--initial-cluster")
                .arg(format!("{}={}", node.hostname, peer_url));
        }
        ClusterFlags::Initial { cluster, existing } => {
            command
                .args(["--initial-cluster", cluster])
                .args([
                    "--initial-cluster-state",
                    if *existing { "existing" } else { "new" },
                ])
                .args(["--initial-cluster-token", "talos-emulator"]);
        }
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            // etcd must never outlive the emulator, even when it is killed outright.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn()
}

pub fn signal(pid: u32, signal: i32) {
    // SAFETY: plain syscall on a pid we spawned.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

/// SIGTERM, then SIGKILL after a short grace period.
pub async fn stop(child: &mut Child) {
    if let Some(pid) = child.id() {
        signal(pid, libc::SIGTERM);
    }
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// Talos' restart wrapper message for a task that exited.
pub fn exit_text(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("exit code {}", 128 + sig),
        _ => "unknown exit status".to_string(),
    }
}
