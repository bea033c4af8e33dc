//! Machine-config backups on every replica: taken through replica A, listed and downloaded
//! through replica B (the sealed configs are rows of the shared database, not files of A's).

use std::sync::Arc;

use reqwest::Method;
use talos_dr::recovery::ShiftedClock;

use super::{fake_replica, two_storages};
use crate::fake::FakeTalos;

fn config_of(node: &str) -> Vec<u8> {
    format!("version: v1alpha1\nmachine:\n  type: controlplane\n  network:\n    hostname: {node}\n")
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_on_one_replica_downloads_on_the_other() {
    let ((storage_a, dir_a), (storage_b, dir_b)) = two_storages().await;
    let fake = FakeTalos::healthy_cluster(3);
    for node in fake.node_names() {
        let config = config_of(&node);
        fake.update(&node, |n| n.machine_config = Some(config));
    }
    let clock = Arc::new(ShiftedClock::default());
    let a = fake_replica(storage_a, dir_a, &fake, &clock).await;
    let b = fake_replica(storage_b, dir_b, &fake, &clock).await;

    let taken = a
        .tester()
        .send(Method::POST, "/api/clusters/prod/machine-configs")
        .send()
        .await
        .expect("sent");
    assert_eq!(taken.status(), 201, "{:?}", taken.text().await);

    let list: serde_json::Value = b
        .get("/api/clusters/prod/machine-configs")
        .await
        .json()
        .await
        .expect("list on B");
    let backups = list["backups"].as_array().expect("backups").clone();
    assert_eq!(backups.len(), 3, "{list}");
    for backup in &backups {
        let node = backup["node"].as_str().expect("node");
        let id = backup["id"].as_str().expect("id");
        let download = b
            .get(&format!("/api/clusters/prod/machine-configs/{id}/download"))
            .await;
        assert_eq!(download.status(), 200, "download of {node} on B");
        let body = download.bytes().await.expect("body");
        assert_eq!(body.as_ref(), config_of(node).as_slice(), "{node}");
    }
    assert!(
        !a.data_dir.path().join("machine-configs").exists(),
        "nothing of it lives in A's data directory"
    );
}
