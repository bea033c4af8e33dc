//! Restoring an uploaded snapshot into the etcd data directory, with etcd's own tooling
//! (`etcdctl snapshot status` / `snapshot restore`), logging to the kernel log like Talos.

use std::path::Path;

use serde::Deserialize;

use super::NodeInner;

/// `etcdctl snapshot status -w json`.
#[derive(Debug, Deserialize)]
pub struct SnapshotStatus {
    pub hash: u32,
    pub revision: i64,
    #[serde(rename = "totalKey")]
    pub total_key: u64,
    #[serde(rename = "totalSize")]
    pub total_size: u64,
}

pub async fn snapshot_status(path: &Path) -> Result<SnapshotStatus, String> {
    let output = tokio::process::Command::new("etcdctl")
        .args(["snapshot", "status", "-w", "json"])
        .arg(path)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run etcdctl: {e}"))?;
    if !output.status.success() {
        return Err(last_error_line(&output.stderr));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("unexpected etcdctl snapshot status output: {e}"))
}

/// The recover branch of Talos' etcd pre stage. Errors carry Talos' wording.
pub async fn restore_snapshot(node: &NodeInner, skip_hash_check: bool) -> Result<(), String> {
    let snapshot = node.volumes.etcd_snapshot();
    let status = snapshot_status(&snapshot)
        .await
        .map_err(|e| format!("error verifying snapshot: {e}"))?;
    node.kmsg.talos(format!(
        "recovering etcd from snapshot: hash {:08x}, revision {}, total keys {}, total size {}",
        status.hash, status.revision, status.total_key, status.total_size
    ));

    let data_dir = node.volumes.etcd_data();
    // etcdctl 3.4 refuses an existing data dir, and the volume's folder always exists: restore
    // beside it and move the result in.
    let staging = data_dir.with_file_name(format!(
        "{}.restore",
        data_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "etcd".to_string())
    ));
    let _ = tokio::fs::remove_dir_all(&staging).await;
    let mut command = tokio::process::Command::new("etcdctl");
    command
        .args(["snapshot", "restore"])
        .arg(&snapshot)
        .arg("--data-dir")
        .arg(&staging)
        .args(["--name", &node.hostname])
        .args([
            "--initial-cluster",
            &format!("{}={}", node.hostname, node.peer_url()),
        ])
        .args(["--initial-advertise-peer-urls", &node.peer_url()])
        .kill_on_drop(true);
    if skip_hash_check {
        command.arg("--skip-hash-check");
    }
    let output = command
        .output()
        .await
        .map_err(|e| format!("error recovering from the snapshot: cannot run etcdctl: {e}"))?;
    let staging_text = staging.display().to_string();
    for line in String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.starts_with('{'))
    {
        let line = node
            .volumes
            .to_talos_paths(&line.replace(&staging_text, &data_dir.display().to_string()));
        node.kmsg.talos(line);
    }
    let moved = if output.status.success() {
        tokio::fs::rename(staging.join("member"), data_dir.join("member"))
            .await
            .map_err(|e| e.to_string())
    } else {
        Err(last_error_line(&output.stderr))
    };
    if !output.status.success() {
        // Like etcd's restore, a failed attempt leaves the copied db behind in the data dir.
        let _ = tokio::fs::create_dir_all(data_dir.join("member/snap")).await;
        let _ = tokio::fs::rename(
            staging.join("member/snap/db"),
            data_dir.join("member/snap/db"),
        )
        .await;
    }
    let _ = tokio::fs::remove_dir_all(&staging).await;
    moved.map_err(|e| format!("error recovering from the snapshot: {e}"))?;
    tokio::fs::remove_file(&snapshot)
        .await
        .map_err(|e| format!("error deleting snapshot: {e}"))?;
    Ok(())
}

fn last_error_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with('{'))
        .map(|l| l.trim_start_matches("Error: ").trim().to_string())
        .unwrap_or_else(|| "etcdctl failed".to_string())
}
