//! A full disk refuses takes and uploads with a message naming the store's directory, records a
//! failed attempt (never a "good" entry), leaves no partial file and touches nothing stored.
//! Uses 127.0.57.x.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::Method;
use talos_dr::snapshots::SnapshotSettings;
use talos_dr_shared::ErrorBody;
use talos_dr_shared::snapshots::SnapshotResponse;

use super::{CLUSTER, start_configured, stored_files};
use crate::fake::FakeTalos;
use crate::helpers::{settings, spawn_app_configured};

/// What the stand-in disk of the first test says is free; the test fills it.
static FREE: AtomicU64 = AtomicU64::new(u64::MAX);

fn stand_in_disk(_: &Path) -> std::io::Result<u64> {
    Ok(FREE.load(Ordering::SeqCst))
}

fn staged_files(root: &Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(root.join(".incoming")) {
        Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    }
}

fn canonical(root: &Path) -> String {
    std::fs::canonicalize(root)
        .expect("store dir exists")
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_takes_and_uploads_and_keeps_what_is_stored() {
    let console = start_configured(Ipv4Addr::new(127, 0, 57, 2), |state| {
        let root = state.snapshots().settings.root.clone();
        let mut settings = SnapshotSettings::in_data_dir(root.parent().expect("data dir"));
        settings.free_space = stand_in_disk;
        state.with_snapshots(settings)
    })
    .await;

    // Room on the disk: a good snapshot is stored.
    let response = console.take(serde_json::json!({})).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let good = response
        .json::<SnapshotResponse>()
        .await
        .expect("snapshot")
        .snapshot;
    let root = console.store_root();
    let before = stored_files(&root);
    assert_eq!(before.len(), 1);
    let good_bytes = std::fs::read(&before[0]).expect("stored file");

    // The disk fills: 1 MiB free, 256 MiB must stay free.
    FREE.store(1 << 20, Ordering::SeqCst);
    let response = console.take(serde_json::json!({})).await;
    assert_eq!(response.status(), 502);
    let error: ErrorBody = response.json().await.expect("error body");
    let message = error.error.message;
    assert!(
        message.contains(&format!(
            "the disk of the snapshot store (directory {}) is full: 1.0 MiB free",
            canonical(&root)
        )),
        "{message}"
    );
    assert!(message.contains("256 MiB must stay free"), "{message}");

    let upload = console
        .app
        .tester()
        .send(
            Method::POST,
            &format!("/api/clusters/{CLUSTER}/snapshots/upload"),
        )
        .header("Content-Type", "application/octet-stream")
        .body(good_bytes.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(upload.status(), 422);
    let error: ErrorBody = upload.json().await.expect("error body");
    assert!(
        error.error.message.contains("is full"),
        "{}",
        error.error.message
    );
    assert!(
        error.error.message.contains(&canonical(&root)),
        "{}",
        error.error.message
    );

    // Two failed attempts, the good one untouched, no partial file.
    let list = console.list().await;
    assert_eq!(list.snapshots.len(), 3);
    let failed: Vec<_> = list.snapshots.iter().filter(|s| s.failed()).collect();
    assert_eq!(failed.len(), 2);
    for entry in &failed {
        assert!(entry.size.is_none() && entry.verdict.is_none(), "{entry:?}");
        let reason = entry.failure.as_deref().unwrap_or_default();
        assert!(reason.contains("is full"), "{reason}");
    }
    let kept = list
        .snapshots
        .iter()
        .find(|s| s.id == good.id)
        .expect("the good entry is still listed");
    assert_eq!(kept, &good);
    assert_eq!(stored_files(&root), before);
    assert_eq!(std::fs::read(&before[0]).expect("stored file"), good_bytes);
    assert!(staged_files(&root).is_empty(), "{:?}", staged_files(&root));
}

#[tokio::test]
async fn an_upload_beyond_the_real_free_space_is_refused() {
    // Against the real disk: more must stay free than any disk here has.
    let fake = FakeTalos::healthy_cluster(1);
    let nodes = fake.node_names();
    let cluster = talos_dr::watch_cluster(
        settings("prod", nodes),
        fake as std::sync::Arc<dyn talos_dr::talos::TalosApi>,
    );
    let app = spawn_app_configured(vec![cluster], Default::default(), |state| {
        let root = state.snapshots().settings.root.clone();
        let mut settings = SnapshotSettings::in_data_dir(root.parent().expect("data dir"));
        settings.min_free_bytes = u64::MAX / 4;
        state.with_snapshots(settings)
    })
    .await;
    let root = app.data_dir.path().join("snapshots");
    let response = app
        .tester()
        .send(Method::POST, "/api/clusters/prod/snapshots/upload")
        .header("Content-Type", "application/octet-stream")
        .body(vec![0u8; 64 * 1024])
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 422);
    let error: ErrorBody = response.json().await.expect("error body");
    assert!(
        error.error.message.contains(&format!(
            "the disk of the snapshot store (directory {}) is full",
            canonical(&root)
        )),
        "{}",
        error.error.message
    );
    assert!(stored_files(&root).is_empty());
    assert!(staged_files(&root).is_empty());
}
