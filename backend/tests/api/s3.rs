//! Snapshots into a real S3-compatible server (moto from the project's `.venv-moto`, with IAM
//! checks on), configured the way `talos-dr serve` configures it. The emulator here uses
//! 127.0.49.x.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use talos_dr::AccessSettings;
use talos_dr::snapshot_s3::{S3Flags, open_checked_s3};
use talos_dr::snapshots::{S3Settings, SnapshotSettings, SnapshotStore};
use talos_dr_shared::snapshots::SnapshotResponse;
use talos_emulator::{Emulator, EmulatorOptions, Role as TalosRole};
use tokio::process::Command;

use crate::helpers::{emulated_clusters, spawn_app_configured};
use crate::pki::TestPki;

const CLUSTER: &str = "emulated";

#[path = "../support/moto.rs"]
mod moto;
use moto::Moto;

impl Moto {
    /// The flags an operator would pass, with the secret in a file under `dir`.
    fn flags(&self, dir: &Path, secret: &str) -> S3Flags {
        let secret_file = dir.join("s3-secret");
        std::fs::write(&secret_file, format!("{secret}\n")).expect("secret file");
        S3Flags {
            endpoint: Some(self.endpoint.clone()),
            bucket: Some(self.bucket.clone()),
            region: None,
            access_key_id: Some(self.access_key_id.clone()),
            secret_file: Some(secret_file),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_configured_for_s3_takes_snapshots_into_the_bucket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts =
        EmulatorOptions::new(3, Ipv4Addr::new(127, 0, 49, 2), dir.path().join("cluster"));
    opts.seed_keys = 20;
    let (emulator, moto) = tokio::join!(Emulator::start(opts), Moto::start());
    let emulator = emulator.expect("the emulated cluster starts");

    let settings: S3Settings = moto
        .flags(dir.path(), &moto.secret_access_key)
        .settings()
        .expect("flags are complete")
        .expect("an endpoint is given");
    let store = open_checked_s3(&settings, &dir.path().join("staging"))
        .await
        .expect("moto accepts the credentials");

    let clusters = emulated_clusters(CLUSTER, emulator.talosconfig_path(TalosRole::Admin), |_| {});
    let snapshot_settings = SnapshotSettings::in_data_dir(dir.path());
    let app = spawn_app_configured(clusters, AccessSettings::default(), |state| {
        state.with_snapshot_store(snapshot_settings, store)
    })
    .await;

    let node = emulator.control_plane_ips()[1].to_string();
    let response = app
        .tester()
        .send(Method::POST, &format!("/api/clusters/{CLUSTER}/snapshots"))
        .json(&serde_json::json!({ "node": node }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let taken: SnapshotResponse = response.json().await.expect("snapshot");
    assert!(
        taken.snapshot.failure.is_none(),
        "{:?}",
        taken.snapshot.failure
    );
    let size = taken.snapshot.size.expect("a stored size");

    // The object is in the bucket, as seen by a second, independent client.
    let reader = SnapshotStore::s3(&settings, dir.path().join("staging-reader"))
        .await
        .expect("store opens");
    let keys = reader.list(CLUSTER).await.expect("bucket lists");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(reader.size(&keys[0]).await.expect("head"), size);
    assert!(
        !dir.path().join("snapshots").exists(),
        "nothing went to the local directory"
    );

    // The download streams back from the bucket.
    let download = app
        .get(&format!(
            "/api/clusters/{CLUSTER}/snapshots/{}/download",
            taken.snapshot.id
        ))
        .await;
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.expect("body").len() as u64, size);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_refused_s3_secret_stops_the_console_naming_the_endpoint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let moto = Moto::start().await;
    let flags = moto.flags(dir.path(), "not-the-secret");

    // The library call the binary makes...
    let settings = flags.settings().expect("complete").expect("endpoint given");
    let err = open_checked_s3(&settings, &dir.path().join("staging"))
        .await
        .expect_err("moto refuses the secret");
    assert!(err.to_string().contains(&moto.endpoint), "{err}");

    // ...and the binary itself refuses to start.
    let talosconfig = dir.path().join("talosconfig");
    std::fs::write(
        &talosconfig,
        TestPki::new().talosconfig("prod", &["127.0.0.1".into()], &[]),
    )
    .expect("talosconfig");
    let run = Command::new(env!("CARGO_BIN_EXE_talos-dr"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--cluster")
        .arg(format!("prod={}", talosconfig.display()))
        .args(["--snapshot-s3-endpoint", &moto.endpoint])
        .args(["--snapshot-s3-bucket", "snapshots"])
        .args(["--snapshot-s3-access-key-id", &moto.access_key_id])
        .arg("--snapshot-s3-secret-file")
        .arg(dir.path().join("s3-secret"))
        .env_remove("TALOS_DR_CONFIG")
        .env_remove("TALOS_DR_LISTEN")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the console exits instead of serving")
        .expect("the binary runs");
    assert!(!output.status.success(), "the console must refuse to start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&moto.endpoint), "{stderr}");

    // Incomplete flags name the missing one.
    let incomplete = S3Flags {
        secret_file: None,
        ..flags
    };
    let err = incomplete.settings().expect_err("no secret file");
    assert!(
        err.to_string().contains("--snapshot-s3-secret-file"),
        "{err}"
    );
}
