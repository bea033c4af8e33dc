//! The Talos recovery calls of the console's client against the emulator (real mTLS, real etcd),
//! checked against the emulator's per-node call counters; and the fake's call recording.
//! Uses 127.0.50.x to 127.0.53.x.

mod fake_recording;
mod lab;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use talos_dr::config::{ClusterConfig, Config, RoleTalosconfig};
use talos_dr::talos::credentials::TalosRole;
use talos_dr::talos::{
    ApplyMode, BootstrapOptions, ByteStream, TalosApi, TalosError, TalosRecoveryApi,
};
use talos_dr_shared::{MachineType, ServiceHealth, ServiceState};
use talos_emulator::{CallCounts, RecoveryCall, Role};

use lab::{PATIENCE, byte_stream, lab, wait_for_line, wait_until, wipe};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_then_recover_from_a_snapshot_through_the_client() {
    let lab = lab(Ipv4Addr::new(127, 0, 50, 1), false, 60).await;
    let client = lab.client(Role::Admin, Duration::from_secs(3));
    let node = lab.node.as_str();
    let seeded = lab.count_keys("/registry/");
    assert_eq!(seeded, 60);

    // An empty wipe list would wipe the whole disk: refused before anything is sent.
    let refused = client.reset(node, &wipe(&[])).await;
    assert!(
        matches!(&refused, Err(TalosError::Refused(w)) if w.contains("whole system disk")),
        "{refused:?}"
    );
    assert_eq!(lab.executed(), CallCounts::default());
    assert_eq!(
        lab.refused(),
        CallCounts::default(),
        "the node never saw it"
    );

    let mut snapshot = Vec::new();
    let mut stream = client.etcd_snapshot(node).await.expect("snapshot starts");
    while let Some(chunk) = stream.next().await {
        snapshot.extend_from_slice(&chunk.expect("snapshot streams"));
    }
    assert_eq!(snapshot.len() % 512, 32, "bbolt image plus sha256 trailer");
    lab.put("/registry/configmaps/default/after-snapshot", "lost");

    let before = client.boot_id(node).await.expect("boot id");
    assert_eq!(before, lab.emulator.node(lab.ip).expect("node").boot_id());
    client
        .reset(node, &wipe(&["EPHEMERAL"]))
        .await
        .expect("reset accepted");
    wait_until(
        "a new boot with etcd waiting in Preparing",
        PATIENCE,
        || async {
            let booted = client.boot_id(node).await.is_ok_and(|id| id != before);
            let etcd = client.etcd_service(node).await.ok().flatten();
            booted && etcd.is_some_and(|s| s.state == ServiceState::Preparing)
        },
    )
    .await;

    let mut log = client
        .dmesg(node, true, 0)
        .await
        .expect("kernel log followed");
    let sent = Arc::new(AtomicU64::new(0));
    let report = sent.clone();
    client
        .etcd_recover(
            node,
            byte_stream(snapshot.clone()),
            Box::new(move |bytes| report.store(bytes, Ordering::SeqCst)),
        )
        .await
        .expect("snapshot uploaded");
    assert_eq!(sent.load(Ordering::SeqCst), snapshot.len() as u64);
    client
        .bootstrap(
            node,
            BootstrapOptions {
                recover_etcd: true,
                recover_skip_hash_check: false,
            },
        )
        .await
        .expect("bootstrap accepted");

    let recovering = wait_for_line(&mut log, "recovering etcd from snapshot: hash ").await;
    assert!(recovering.contains("[talos]"), "{recovering}");
    let restored = wait_for_line(&mut log, "\"msg\":\"restored snapshot\"").await;
    assert!(restored.contains("/var/lib/etcd.snapshot"), "{restored}");
    wait_until("etcd healthy again", PATIENCE, || async {
        client
            .etcd_service(node)
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.state == ServiceState::Running && s.health == ServiceHealth::Healthy)
    })
    .await;
    assert_eq!(
        lab.count_keys("/registry/"),
        seeded,
        "the snapshot's data is back, the later write is not"
    );

    let last = client
        .dmesg(node, false, 3)
        .await
        .expect("kernel log")
        .collect::<Vec<_>>()
        .await;
    assert_eq!(last.len(), 3, "the last three lines");
    let all: Vec<String> = client
        .dmesg(node, false, -1)
        .await
        .expect("kernel log")
        .map(|l| l.expect("line").text)
        .collect()
        .await;
    assert!(
        all.iter().any(|l| l == &recovering),
        "the history holds the recovery line"
    );
    assert!(all.iter().all(|l| !l.contains('\n')));

    assert_eq!(
        lab.executed(),
        CallCounts {
            reset: 1,
            etcd_recover: 1,
            bootstrap: 1,
            ..CallCounts::default()
        },
        "each call reached the node exactly once"
    );
    assert_eq!(lab.refused(), CallCounts::default());
    lab.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_outlives_the_per_call_timeout_but_a_unary_call_does_not() {
    let lab = lab(Ipv4Addr::new(127, 0, 51, 1), false, 0).await;
    let call_timeout = Duration::from_secs(1);
    let client = lab.client(Role::Admin, call_timeout);
    let node = lab.node.as_str();

    // The node answers EtcdRecover only after the whole upload, here held 2.5 s.
    let stored = lab
        .emulator
        .node(lab.ip)
        .and_then(|n| n.host_path("/var/lib/etcd.snapshot"))
        .expect("path");
    lab.emulator
        .hold(
            lab.ip,
            RecoveryCall::EtcdRecover,
            Duration::from_millis(2500),
        )
        .expect("hold armed");
    let started = Instant::now();
    client
        .etcd_recover(node, byte_stream(vec![5u8; 300 * 1024]), Box::new(|_| {}))
        .await
        .expect("a slow upload is not cut by the per-call timeout");
    assert!(started.elapsed() >= Duration::from_millis(2500));
    assert_eq!(lab.executed().etcd_recover, 1);
    assert_eq!(
        std::fs::metadata(&stored).expect("stored").len(),
        300 * 1024
    );

    // A unary call still gives up after the per-call timeout, and the node drops it.
    let before = client.boot_id(node).await.expect("boot id");
    lab.emulator
        .hold(lab.ip, RecoveryCall::Reboot, Duration::from_millis(2500))
        .expect("hold armed");
    assert_eq!(client.reboot(node).await, Err(TalosError::Timeout));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        lab.executed().reboot,
        0,
        "the caller went away during the hold"
    );
    assert_eq!(client.boot_id(node).await.expect("boot id"), before);

    // A snapshot source failing mid-way cancels the upload: the node drops its truncated file
    // (the stored one above included, as Talos truncates before writing). 3 MiB is more than
    // the HTTP/2 windows hold, so the node has surely started writing when the source fails.
    let failing: ByteStream = byte_stream(vec![3u8; 3 << 20])
        .chain(futures::stream::iter([Err(TalosError::Unreachable(
            "snapshot store gone".into(),
        ))]))
        .boxed();
    assert_eq!(
        client.etcd_recover(node, failing, Box::new(|_| {})).await,
        Err(TalosError::Unreachable("snapshot store gone".into()))
    );
    wait_until(
        "the partial upload to be removed",
        Duration::from_secs(5),
        || async { !stored.exists() },
    )
    .await;
    assert_eq!(
        lab.executed().etcd_recover,
        1,
        "only the complete upload counts"
    );
    lab.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_config_and_reboot_convert_an_init_node() {
    let lab = lab(Ipv4Addr::new(127, 0, 52, 1), true, 0).await;
    let client = lab.client(Role::Admin, Duration::from_secs(3));
    let node = lab.node.as_str();
    assert_eq!(client.machine_type(node).await, Ok(MachineType::Init));

    let config =
        String::from_utf8(client.machine_config(node).await.expect("config")).expect("yaml");
    assert!(config.contains("type: init"), "{config}");
    let converted = config.replacen("type: init", "type: controlplane", 1);
    client
        .apply_configuration(node, converted.into_bytes(), ApplyMode::Staged)
        .await
        .expect("staged");
    assert_eq!(
        client.machine_type(node).await,
        Ok(MachineType::Init),
        "staged: not active before the reboot"
    );

    let before = client.boot_id(node).await.expect("boot id");
    client.reboot(node).await.expect("reboot accepted");
    wait_until("a controlplane node after the reboot", PATIENCE, || async {
        client.boot_id(node).await.is_ok_and(|id| id != before)
            && client.machine_type(node).await == Ok(MachineType::Controlplane)
    })
    .await;
    assert_eq!(
        lab.executed(),
        CallCounts {
            apply_configuration: 1,
            reboot: 1,
            ..CallCounts::default()
        }
    );
    lab.emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_credentials_are_refused_and_startup_uses_the_admin_talosconfig() {
    let lab = lab(Ipv4Addr::new(127, 0, 53, 1), false, 0).await;
    let reader = lab.client(Role::Reader, Duration::from_secs(3));
    let node = lab.node.as_str();
    let denied = TalosError::Refused("permission denied".into());

    assert_eq!(
        reader.reset(node, &wipe(&["EPHEMERAL"])).await,
        Err(denied.clone())
    );
    assert_eq!(
        reader.bootstrap(node, BootstrapOptions::default()).await,
        Err(denied.clone())
    );
    assert_eq!(reader.reboot(node).await, Err(denied.clone()));
    assert_eq!(
        reader
            .apply_configuration(node, b"version: v1alpha1\n".to_vec(), ApplyMode::Staged)
            .await,
        Err(denied.clone())
    );
    assert_eq!(
        reader
            .etcd_recover(node, byte_stream(vec![1u8; 10_000]), Box::new(|_| {}))
            .await,
        Err(denied.clone())
    );
    assert_eq!(
        reader.boot_id(node).await,
        Err(denied.clone()),
        "Read is admin-only"
    );
    assert_eq!(lab.executed(), CallCounts::default());
    assert_eq!(
        lab.refused(),
        CallCounts {
            reset: 1,
            bootstrap: 1,
            etcd_recover: 1,
            apply_configuration: 1,
            reboot: 1
        }
    );

    // Health reads with the reader talosconfig, recovery steps with the admin one.
    let mut cluster = ClusterConfig {
        name: "recovery".into(),
        talosconfig: lab.emulator.talosconfig_path(Role::Reader),
        context: None,
        nodes: None,
        talosconfigs: BTreeMap::new(),
    };
    let watched =
        talos_dr::watch_clusters(&Config::with_clusters(vec![cluster.clone()])).expect("starts");
    let recovery = watched[0]
        .recovery_talos
        .clone()
        .expect("falls back to the cluster talosconfig");
    assert_eq!(
        recovery.boot_id(node).await,
        Err(denied),
        "a reader fallback cannot recover"
    );
    cluster.talosconfigs.insert(
        TalosRole::Admin,
        RoleTalosconfig {
            talosconfig: lab.emulator.talosconfig_path(Role::Admin),
            context: None,
        },
    );
    let watched = talos_dr::watch_clusters(&Config::with_clusters(vec![cluster])).expect("starts");
    let recovery = watched[0].recovery_talos.clone().expect("an admin client");
    let boot_id = recovery
        .boot_id(node)
        .await
        .expect("admin reads the boot id");
    assert_eq!(boot_id, lab.emulator.node(lab.ip).expect("node").boot_id());
    assert_eq!(
        watched[0].talos.version(node).await.map(|v| v.is_empty()),
        Ok(false)
    );
    lab.emulator.shutdown().await;
}
