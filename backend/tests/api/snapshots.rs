//! Snapshot history against the Talos emulator: real EtcdSnapshot and Read streams from real
//! etcd, checked against etcdctl. These tests use 127.0.40.x to 127.0.45.x; [`transfers`] uses
//! 127.0.56.x and [`disk_full`] 127.0.57.x.

mod disk_full;
mod transfers;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use talos_dr_shared::snapshots::{
    KeyChangeKindView, SnapshotDetail, SnapshotDiffView, SnapshotEntryKind, SnapshotList,
    SnapshotResponse,
};
use talos_dr_shared::{ClusterHealth, ErrorBody, MemberState, Role};
use talos_emulator::{Emulator, EmulatorOptions, Role as TalosRole};
use tempfile::TempDir;

use crate::helpers::{TEST_PASSWORD, TestApp, emulated_clusters, spawn_app_configured};

const CLUSTER: &str = "emulated";
const PATIENCE: Duration = Duration::from_secs(90);

struct Console {
    emulator: Emulator,
    app: TestApp,
    _dir: TempDir,
}

async fn start(base_ip: Ipv4Addr) -> Console {
    start_configured(base_ip, |state| state).await
}

/// As [`start`], with `configure` applied to the console's state (snapshot settings).
async fn start_configured(
    base_ip: Ipv4Addr,
    configure: impl FnOnce(talos_dr::state::AppState) -> talos_dr::state::AppState,
) -> Console {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = EmulatorOptions::new(3, base_ip, dir.path().join("cluster"));
    opts.seed_keys = 40;
    let emulator = Emulator::start(opts)
        .await
        .expect("the emulated cluster starts");
    let clusters = emulated_clusters(CLUSTER, emulator.talosconfig_path(TalosRole::Admin), |_| {});
    let app = spawn_app_configured(clusters, Default::default(), configure).await;
    let console = Console {
        emulator,
        app,
        _dir: dir,
    };
    console.wait_until_healthy().await;
    console
}

impl Console {
    async fn wait_until_healthy(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let response = self
                .app
                .get(&format!("/api/clusters/{CLUSTER}/health"))
                .await;
            if response.status() == 200 {
                let body: serde_json::Value = response.json().await.expect("json");
                let health: ClusterHealth =
                    serde_json::from_value(body["health"].clone()).expect("health");
                if health.members.len() == 3
                    && health
                        .members
                        .iter()
                        .all(|m| m.state == MemberState::Healthy)
                {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the emulated cluster never became healthy"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn node(&self, i: usize) -> Ipv4Addr {
        self.emulator.control_plane_ips()[i]
    }

    fn snapshots_path(&self) -> String {
        format!("/api/clusters/{CLUSTER}/snapshots")
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.app
            .tester()
            .send(Method::POST, path)
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    async fn take(&self, body: serde_json::Value) -> reqwest::Response {
        self.post(&self.snapshots_path(), body).await
    }

    async fn list(&self) -> SnapshotList {
        let response = self.app.get(&self.snapshots_path()).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("snapshot list")
    }

    fn store_root(&self) -> PathBuf {
        self.app.data_dir.path().join("snapshots")
    }
}

/// Every committed file in the store (staging excluded).
fn stored_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == ".incoming") {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

fn stored_file(root: &Path, id: &str) -> PathBuf {
    stored_files(root)
        .into_iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy() == format!("{id}.snapshot"))
        })
        .expect("the snapshot's file is in the store")
}

fn etcdctl(args: &[&str]) -> String {
    let out = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(args)
        .output()
        .expect("etcdctl runs");
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn put(endpoint: Ipv4Addr, key: &str, value: &str) {
    let endpoints = format!("http://{endpoint}:2379");
    etcdctl(&[
        "--endpoints",
        &endpoints,
        "--command-timeout=5s",
        "put",
        key,
        value,
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_snapshot_matches_etcdctl_downloads_diffs_and_rehearses() {
    let console = start(Ipv4Addr::new(127, 0, 40, 2)).await;

    // Taken with the node picked by the console.
    let response = console.take(serde_json::json!({})).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let first: SnapshotResponse = response.json().await.expect("snapshot");
    let first = first.snapshot;
    assert!(first.failure.is_none());
    assert_eq!(first.kind, SnapshotEntryKind::Snapshot);
    let node = first.node.clone().expect("the node is recorded");
    assert_eq!(
        first.talosctl,
        format!("talosctl -n {node} etcd snapshot db.snapshot")
    );
    assert_eq!(first.taken_by, "tester");

    // The figures are what etcdctl says about the stored file.
    let file = stored_file(&console.store_root(), &first.id);
    let status: serde_json::Value = serde_json::from_str(&etcdctl(&[
        "snapshot",
        "status",
        "-w",
        "json",
        &file.to_string_lossy(),
    ]))
    .expect("etcdctl json");
    let figures = first.figures.clone().expect("figures");
    assert_eq!(status["revision"].as_i64(), Some(figures.revision));
    assert_eq!(status["totalKey"].as_u64(), Some(figures.total_keys));
    assert_eq!(status["totalSize"].as_u64(), Some(figures.total_size));
    assert_eq!(
        status["hash"].as_u64().map(|h| format!("{h:x}")),
        Some(figures.hash.clone())
    );

    // The download is the stored file, byte for byte, with its length announced.
    let download = console
        .app
        .get(&format!(
            "{}/{}/download",
            console.snapshots_path(),
            first.id
        ))
        .await;
    assert_eq!(download.status(), 200);
    let stored = std::fs::read(&file).expect("stored file");
    assert_eq!(download.content_length(), Some(stored.len() as u64));
    let bytes = download.bytes().await.expect("body");
    assert_eq!(bytes.as_ref(), stored.as_slice());

    // Keys written between two snapshots are what the diff lists.
    put(
        console.node(0),
        "/registry/configmaps/default/written-between",
        "v1",
    );
    put(
        console.node(0),
        "/registry/secrets/kube-system/also-between",
        "v2",
    );
    let response = console
        .take(serde_json::json!({"node": console.node(2).to_string()}))
        .await;
    assert_eq!(response.status(), 201);
    let second: SnapshotResponse = response.json().await.expect("snapshot");
    let second = second.snapshot;
    assert_eq!(
        second.node.as_deref(),
        Some(console.node(2).to_string().as_str())
    );

    let diff: SnapshotDiffView = console
        .app
        .get(&format!(
            "{}/{}/diff/{}",
            console.snapshots_path(),
            second.id,
            first.id
        ))
        .await
        .json()
        .await
        .expect("diff");
    assert_eq!(
        diff.old_id, first.id,
        "the older snapshot is the one restoring would go back to"
    );
    let added: Vec<&str> = diff
        .keys
        .iter()
        .filter(|k| k.change == KeyChangeKindView::Added)
        .map(|k| k.key.as_str())
        .collect();
    assert!(
        added.contains(&"/registry/configmaps/default/written-between"),
        "{added:?}"
    );
    assert!(
        added.contains(&"/registry/secrets/kube-system/also-between"),
        "{added:?}"
    );
    assert_eq!(diff.totals.added, 2, "{:?}", diff.keys);

    // The list is newest first, and the entry shows contents per resource.
    let list = console.list().await;
    assert_eq!(
        list.snapshots
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        [second.id.as_str(), first.id.as_str()]
    );
    let detail: SnapshotDetail = console
        .app
        .get(&format!("{}/{}", console.snapshots_path(), second.id))
        .await
        .json()
        .await
        .expect("detail");
    let configmaps = detail
        .resources
        .iter()
        .find(|r| r.resource == "configmaps")
        .expect("configmaps listed");
    assert!(
        configmaps.namespaces.get("default").copied().unwrap_or(0) >= 1,
        "{configmaps:?}"
    );

    // A rehearsal restores the file into a throwaway etcd and marks the entry.
    let response = console
        .post(
            &format!("{}/{}/rehearse", console.snapshots_path(), second.id),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let rehearsed: SnapshotResponse = response.json().await.expect("rehearsed");
    let rehearsal = rehearsed.snapshot.rehearsal.expect("rehearsal recorded");
    assert!(rehearsal.passed, "{:?}", rehearsal.problems);
    let listed = console.list().await;
    assert!(
        listed.snapshots[0]
            .rehearsal
            .as_ref()
            .is_some_and(|r| r.passed)
    );

    // A viewer reads the history but cannot take a snapshot.
    console.app.add_user("watcher", &[Role::Viewer]).await;
    let viewer = console.app.sign_in("watcher", TEST_PASSWORD).await;
    assert_eq!(viewer.get(&console.snapshots_path()).await.status(), 200);
    let refused = viewer
        .send(Method::POST, &console.snapshots_path())
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), 403);
    assert_eq!(
        console.list().await.snapshots.len(),
        2,
        "the refused request recorded nothing"
    );

    // The audit trail names each snapshot taken.
    let audit: serde_json::Value = console
        .app
        .get("/api/audit?action=snapshot_create")
        .await
        .json()
        .await
        .expect("audit page");
    let targets: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["outcome"] == "ok")
        .filter_map(|e| e["target"].as_str())
        .collect();
    assert!(
        targets.contains(&first.id.as_str()) && targets.contains(&second.id.as_str()),
        "{audit}"
    );

    console.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_streams_raw_copies_and_garbage_uploads_are_recorded_as_such() {
    let console = start(Ipv4Addr::new(127, 0, 41, 2)).await;
    let node = console.node(1);

    // A stream the node cuts after 4 KiB leaves a failed attempt and no file.
    console
        .emulator
        .cut_next_snapshot(node, 4096, false)
        .expect("cut armed");
    let response = console
        .take(serde_json::json!({"node": node.to_string()}))
        .await;
    assert_eq!(response.status(), 502);
    let error: ErrorBody = response.json().await.expect("error body");
    assert_eq!(error.error.code, "snapshot_failed");
    let list = console.list().await;
    assert_eq!(list.snapshots.len(), 1);
    let failed = &list.snapshots[0];
    assert!(failed.failed());
    assert!(
        failed.failure.as_deref().is_some_and(|f| !f.is_empty()),
        "{failed:?}"
    );
    assert!(failed.size.is_none() && failed.sha256.is_none());
    assert!(
        stored_files(&console.store_root()).is_empty(),
        "no object was stored"
    );
    let audit: serde_json::Value = console
        .app
        .get("/api/audit?action=snapshot_create")
        .await
        .json()
        .await
        .expect("audit page");
    let entry = &audit["entries"][0];
    assert_eq!(
        entry["target"].as_str(),
        Some(failed.id.as_str()),
        "{audit}"
    );
    assert!(
        entry["outcome"]
            .as_str()
            .is_some_and(|o| o.starts_with("failed")),
        "{audit}"
    );

    // The same with an error status mid-stream.
    console
        .emulator
        .cut_next_snapshot(node, 8192, true)
        .expect("cut armed");
    let response = console
        .take(serde_json::json!({"node": node.to_string()}))
        .await;
    assert_eq!(response.status(), 502);
    let error: ErrorBody = response.json().await.expect("error body");
    assert!(
        error.error.message.contains("stream failed after"),
        "{}",
        error.error.message
    );
    assert!(
        stored_files(&console.store_root()).is_empty(),
        "no object was stored"
    );

    // A raw copy is recorded as one, with its warning.
    let response = console
        .post(
            &format!("{}/raw-copy", console.snapshots_path()),
            serde_json::json!({"node": node.to_string()}),
        )
        .await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let raw: SnapshotResponse = response.json().await.expect("raw copy");
    let raw = raw.snapshot;
    assert_eq!(raw.kind, SnapshotEntryKind::RawCopy);
    let verdict = raw.verdict.expect("verdict");
    assert_eq!(verdict.restorability, "restores_only_with_skip_hash_check");
    assert!(
        verdict
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("may not be consistent"))
    );
    assert_eq!(
        raw.talosctl,
        format!("talosctl -n {node} read /var/lib/etcd/member/snap/db > db")
    );

    // Garbage is refused with the inspector's reason, recorded as a failed upload.
    // Larger than axum's default body limit: the upload streams past it.
    let garbage = vec![0x5au8; 3 * 1024 * 1024];
    let response = console
        .app
        .tester()
        .send(
            Method::POST,
            &format!("{}/upload", console.snapshots_path()),
        )
        .header("Content-Type", "application/octet-stream")
        .body(garbage)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 422);
    let error: ErrorBody = response.json().await.expect("error body");
    assert_eq!(error.error.code, "snapshot_refused");
    assert!(
        error
            .error
            .message
            .contains("not a restorable etcd snapshot"),
        "{}",
        error.error.message
    );

    // A real snapshot file uploads and is stored as a snapshot.
    let file = stored_file(&console.store_root(), &raw.id);
    let raw_bytes = std::fs::read(&file).expect("raw copy file");
    let response = console
        .app
        .tester()
        .send(
            Method::POST,
            &format!("{}/upload", console.snapshots_path()),
        )
        .body(raw_bytes)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let uploaded: SnapshotResponse = response.json().await.expect("upload");
    assert_eq!(uploaded.snapshot.kind, SnapshotEntryKind::Upload);
    assert_eq!(
        uploaded.snapshot.stored_as,
        Some(SnapshotEntryKind::RawCopy)
    );

    let list = console.list().await;
    assert_eq!(list.snapshots.len(), 5);
    assert_eq!(list.snapshots.iter().filter(|s| s.failed()).count(), 3);

    console.emulator.shutdown().await;
}
