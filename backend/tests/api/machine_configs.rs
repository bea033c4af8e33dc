//! Machine configuration backups against the Talos emulator, which serves each node's
//! MachineConfig to `os:admin` only. These tests use 127.0.48.x to 127.0.49.x.

use std::net::Ipv4Addr;
use std::time::Duration;

use prost::Message as _;
use reqwest::Method;
use sha2::Digest as _;
use talos_api::cosi::resource::GetRequest;
use talos_api::resource::config::MachineConfigSpec;
use talos_dr::AccessSettings;
use talos_dr::machine_configs::ConfigBackupKey;
use talos_dr_shared::{ErrorBody, Role};
use talos_emulator::{Emulator, EmulatorOptions, Role as TalosRole};

use crate::fake::FakeTalos;
use crate::helpers::{TEST_PASSWORD, emulated_clusters, spawn_app, spawn_app_configured};

const CLUSTER: &str = "emulated";
const KEY: [u8; 32] = [0x5a; 32];

fn backups_path() -> String {
    format!("/api/clusters/{CLUSTER}/machine-configs")
}

/// The config a node serves, asked directly with the emulator's admin client.
async fn served_config(emulator: &Emulator, node: Ipv4Addr) -> Vec<u8> {
    let mut state = emulator
        .state_client(TalosRole::Admin, node)
        .await
        .expect("admin state client");
    let reply = state
        .get(GetRequest {
            namespace: "config".into(),
            r#type: "MachineConfigs.config.talos.dev".into(),
            id: "v1alpha1".into(),
            options: None,
        })
        .await
        .expect("admin reads MachineConfig")
        .into_inner();
    let spec = reply
        .resource
        .and_then(|r| r.spec)
        .expect("the resource has a spec");
    MachineConfigSpec::decode(spec.proto_spec.as_slice())
        .expect("spec decodes")
        .yaml_marshalled
}

/// Every stored backup's sealed bytes, read straight from the database.
async fn sealed_rows(app: &crate::helpers::TestApp) -> Vec<(String, Vec<u8>)> {
    sqlx::query_as("SELECT id, sealed FROM machine_configs ORDER BY id")
        .fetch_all(&app.storage.pool)
        .await
        .expect("the backups' rows")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_are_sealed_per_node_and_download_as_the_node_serves_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let emulator = Emulator::start(EmulatorOptions::new(
        3,
        Ipv4Addr::new(127, 0, 48, 2),
        dir.path().join("cluster"),
    ))
    .await
    .expect("the emulated cluster starts");
    let clusters = emulated_clusters(
        CLUSTER,
        emulator.talosconfig_path(TalosRole::Admin),
        |config| {
            config.poll_interval = Duration::from_millis(500);
        },
    );
    let app = spawn_app_configured(clusters, AccessSettings::default(), |state| {
        state.with_config_backup_key(ConfigBackupKey::from_bytes(KEY))
    })
    .await;
    let tester = app.tester();

    let response = tester
        .send(Method::POST, &backups_path())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let taken: serde_json::Value = response.json().await.expect("json");
    let backups = taken["backups"].as_array().expect("backups").clone();
    assert_eq!(taken["failures"].as_array().map(Vec::len), Some(0));
    let mut nodes: Vec<String> = backups
        .iter()
        .map(|b| b["node"].as_str().expect("node").to_string())
        .collect();
    nodes.sort();
    let mut expected: Vec<String> = emulator
        .control_plane_ips()
        .iter()
        .map(Ipv4Addr::to_string)
        .collect();
    expected.sort();
    assert_eq!(nodes, expected, "one backup per control-plane node");

    // One sealed config per node in the database (none on disk, so every replica serves them),
    // none holding any of the plaintext.
    let rows = sealed_rows(&app).await;
    assert_eq!(rows.len(), 3);
    assert!(!app.data_dir.path().join("machine-configs").exists());
    for (id, bytes) in &rows {
        for needle in [
            &b"machine:"[..],
            b"clusterName",
            b"emulator.token",
            b"v1alpha1",
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "backup {id} holds {:?} in the clear",
                String::from_utf8_lossy(needle)
            );
        }
    }

    let list: serde_json::Value = app.get(&backups_path()).await.json().await.expect("list");
    assert_eq!(list["backups"].as_array().map(Vec::len), Some(3));

    let other_key = ConfigBackupKey::from_bytes([0x11; 32]);
    let right_key = ConfigBackupKey::from_bytes(KEY);
    for backup in &backups {
        let id = backup["id"].as_str().expect("id");
        let node: Ipv4Addr = backup["node"].as_str().expect("node").parse().expect("ip");
        let served = served_config(&emulator, node).await;
        assert!(
            served.starts_with(b"version: v1alpha1"),
            "a real config is served"
        );

        let download = app.get(&format!("{}/{id}/download", backups_path())).await;
        assert_eq!(download.status(), 200);
        assert_eq!(
            download.headers()["content-type"].to_str().expect("ascii"),
            "application/yaml"
        );
        let body = download.bytes().await.expect("body");
        assert_eq!(body.as_ref(), served.as_slice(), "download of {node}");
        assert_eq!(
            backup["sha256"].as_str(),
            Some(hex::encode(sha2::Sha256::digest(&served)).as_str())
        );

        let sealed = rows
            .iter()
            .find(|(row, _)| row == id)
            .map(|(_, sealed)| sealed.clone())
            .expect("the backup's sealed config");
        let binding = format!("{id}\n{CLUSTER}\n{node}");
        assert_eq!(right_key.open(&sealed, &binding).expect("opens"), served);
        assert!(
            other_key.open(&sealed, &binding).is_err(),
            "another key opens it"
        );
    }

    // Neither a viewer nor an operator may take, list or download them.
    app.add_user("vera", &[Role::Viewer]).await;
    app.add_user("otto", &[Role::Operator, Role::Approver])
        .await;
    let id = backups[0]["id"].as_str().expect("id");
    for name in ["vera", "otto"] {
        let client = app.sign_in(name, TEST_PASSWORD).await;
        let post = client
            .send(Method::POST, &backups_path())
            .send()
            .await
            .expect("sent");
        assert_eq!(post.status(), 403, "{name} backs up");
        assert_eq!(
            client.get(&backups_path()).await.status(),
            403,
            "{name} lists"
        );
        let download = client
            .get(&format!("{}/{id}/download", backups_path()))
            .await;
        assert_eq!(download.status(), 403, "{name} downloads");
    }
    assert_eq!(
        sealed_rows(&app).await.len(),
        3,
        "refused calls stored nothing"
    );

    // Taking and downloading are both on the audit trail.
    let audit: serde_json::Value = app.get("/api/audit").await.json().await.expect("audit");
    let text = audit.to_string();
    assert!(text.contains("machine_config_backup"), "{text}");
    assert_eq!(text.matches("machine_config_download").count(), 3, "{text}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn without_a_key_machine_config_backups_are_refused_and_nothing_is_stored() {
    let app = spawn_app(FakeTalos::healthy_cluster(3)).await;
    let path = "/api/clusters/prod/machine-configs";
    let response = app
        .tester()
        .send(Method::POST, path)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 409);
    let body: ErrorBody = response.json().await.expect("error body");
    assert_eq!(body.error.code, "config_backup_key_missing");
    assert!(
        body.error
            .message
            .contains("machine config backups need a key")
            && body.error.message.contains("--config-backup-key-file"),
        "{}",
        body.error.message
    );
    let list: serde_json::Value = app.get(path).await.json().await.expect("list");
    assert_eq!(list["backups"].as_array().map(Vec::len), Some(0));
    assert!(!app.data_dir.path().join("machine-configs").exists());
}

#[tokio::test]
async fn a_key_of_the_wrong_length_stops_the_console_naming_the_flag() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = dir.path().join("backup.key");
    std::fs::write(&key_file, format!("{}\n", "ab".repeat(16))).expect("key file");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_talos-dr"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config-backup-key-file")
        .arg(&key_file)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the console exits")
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--config-backup-key-file")
            && stderr.contains(&key_file.display().to_string())
            && stderr.contains("16 bytes"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists(), "nothing started");
}

#[tokio::test]
async fn nodes_that_refuse_the_config_leave_nothing_stored() {
    // The fake Talos API does not serve machine configs: every node refuses.
    let fake = FakeTalos::healthy_cluster(3);
    let nodes = fake.node_names();
    let clusters = vec![talos_dr::watch_cluster(
        crate::helpers::settings("prod", nodes),
        fake as std::sync::Arc<dyn talos_dr::talos::TalosApi>,
    )];
    let app = spawn_app_configured(clusters, AccessSettings::default(), |state| {
        state.with_config_backup_key(ConfigBackupKey::from_bytes(KEY))
    })
    .await;
    let path = "/api/clusters/prod/machine-configs";
    let response = app
        .tester()
        .send(Method::POST, path)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 502);
    let body: ErrorBody = response.json().await.expect("error body");
    assert_eq!(body.error.code, "machine_config_fetch_failed");
    assert!(
        body.error.message.contains("not supported"),
        "{}",
        body.error.message
    );
    let list: serde_json::Value = app.get(path).await.json().await.expect("list");
    assert_eq!(list["backups"].as_array().map(Vec::len), Some(0));
    assert!(sealed_rows(&app).await.is_empty());
}
