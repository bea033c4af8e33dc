//! EtcdSnapshot, Read of the raw db and what etcd's own tools make of them.

use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;
use talos_api::machine;
use talos_emulator::node::EtcdVolume;

use crate::node_support::*;

async fn reset_and_wait_preparing(node: &talos_emulator::node::Node) {
    let before = node.boot_id();
    let request = machine::ResetRequest {
        graceful: false,
        reboot: true,
        system_partitions_to_wipe: vec![machine::ResetPartitionSpec {
            label: "EPHEMERAL".to_string(),
            wipe: true,
        }],
        user_disks_to_wipe: Vec::new(),
        mode: 0,
    };
    node.reset(request).await.expect("reset accepted");
    wait_until(
        "a reboot into Preparing",
        Duration::from_secs(20),
        || async { node.boot_id() != before && node.etcd_service_state() == Some("Preparing") },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_snapshot_passes_etcdctl_status_and_restore_with_hash_check() {
    let cluster = TestCluster::start(
        Ipv4Addr::new(127, 0, 5, 1),
        3,
        0,
        false,
        EtcdVolume::Directory,
        300,
    )
    .await;
    let node = &cluster.nodes[1];

    let bytes = collect(node.etcd_snapshot().await.expect("snapshot starts"))
        .await
        .expect("snapshot streams");
    assert_eq!(
        bytes.len() % 512,
        32,
        "a snapshot ends with etcd's sha256 trailer"
    );
    // Talos' chunker: 1 KiB messages, only the last one shorter.
    let sizes: Vec<usize> = node
        .etcd_snapshot()
        .await
        .expect("snapshot starts")
        .map(|message| message.expect("snapshot message").bytes.len())
        .collect()
        .await;
    let (last, whole) = sizes.split_last().expect("at least one message");
    assert!(
        whole.iter().all(|n| *n == 1024),
        "every message but the last is 1 KiB"
    );
    assert!((1..=1024).contains(last), "last message: {last} bytes");
    assert_eq!(sizes.iter().sum::<usize>(), bytes.len());
    let file = cluster.path().join("db.snapshot");
    std::fs::write(&file, &bytes).expect("write snapshot");

    let status = snapshot_status(&file);
    assert!(
        status["revision"].as_i64().unwrap_or(0) >= 300,
        "seeded keys are in the snapshot: {status}"
    );
    assert!(status["totalKey"].as_u64().unwrap_or(0) > 300, "{status}");
    assert_eq!(status["totalSize"].as_u64(), Some(bytes.len() as u64 - 32));

    let restored = cluster.path().join("restored");
    let file_arg = file.to_str().expect("utf-8");
    etcdctl_ok(&[
        "snapshot",
        "restore",
        file_arg,
        "--data-dir",
        restored.to_str().expect("utf-8"),
        "--name",
        "check",
        "--initial-cluster",
        "check=http://127.0.5.200:2380",
        "--initial-advertise-peer-urls",
        "http://127.0.5.200:2380",
    ]);
    assert!(restored.join("member/snap/db").is_file());

    // A cut snapshot: with an error status, or silently short (the size check catches it).
    node.cut_next_snapshot(10_000, true);
    let cut = collect(node.etcd_snapshot().await.expect("snapshot starts")).await;
    assert!(cut.is_err(), "a cut with error ends in an error status");
    node.cut_next_snapshot(10_000, false);
    let short = collect(node.etcd_snapshot().await.expect("snapshot starts"))
        .await
        .expect("silent cut ends cleanly");
    assert_eq!(short.len(), 10_000);
    assert_ne!(short.len() % 512, 32);
    // The cut applies once.
    let again = collect(node.etcd_snapshot().await.expect("snapshot starts"))
        .await
        .expect("snapshot streams");
    assert_eq!(again.len() % 512, 32);

    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_db_copy_restores_only_with_skip_hash_check() {
    let cluster = TestCluster::start(
        Ipv4Addr::new(127, 0, 6, 1),
        1,
        0,
        false,
        EtcdVolume::Directory,
        50,
    )
    .await;
    let node = &cluster.nodes[0];

    // etcd commits its backend in batches, so a raw copy lags the latest writes a little: copy
    // until the file holds the seeded revision (50 puts → revision 51).
    let file = cluster.path().join("db.raw");
    let mut raw = Vec::new();
    for _ in 0..50 {
        raw = collect(
            node.read(machine::ReadRequest {
                path: "/var/lib/etcd/member/snap/db".to_string(),
            })
            .await
            .expect("read starts"),
        )
        .await
        .expect("read streams");
        std::fs::write(&file, &raw).expect("write raw db");
        if snapshot_status(&file)["revision"].as_i64().unwrap_or(0) >= 51 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        snapshot_status(&file)["revision"].as_i64().unwrap_or(0) >= 51,
        "the raw db caught up with the seed"
    );
    assert_eq!(raw.len() % 512, 0, "a raw db has no trailer");
    let file_arg = file.to_str().expect("utf-8");
    let restore = |dir: &str, skip: bool| {
        let target = cluster.path().join(dir).display().to_string();
        let mut args = vec![
            "snapshot",
            "restore",
            file_arg,
            "--data-dir",
            &target,
            "--name",
            "check",
        ];
        args.extend([
            "--initial-cluster",
            "check=http://127.0.6.200:2380",
            "--initial-advertise-peer-urls",
            "http://127.0.6.200:2380",
        ]);
        if skip {
            args.push("--skip-hash-check");
        }
        etcdctl(&args)
    };
    let refused = restore("no-skip", false);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("snapshot missing hash"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(restore("skip", true).status.success());

    // Copy gives the same file as a tar.gz with one entry named `db`.
    let archive = collect(
        node.copy(machine::CopyRequest {
            root_path: "/var/lib/etcd/member/snap/db".to_string(),
        })
        .await
        .expect("copy starts"),
    )
    .await
    .expect("copy streams");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()));
    let names: Vec<String> = tar
        .entries()
        .expect("tar")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(names, vec!["db".to_string()]);
    let folder = collect(
        node.copy(machine::CopyRequest {
            root_path: "/var/lib/etcd/member".to_string(),
        })
        .await
        .expect("copy starts"),
    )
    .await
    .expect("copy streams");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(folder.as_slice()));
    let names: Vec<String> = tar
        .entries()
        .expect("tar")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect();
    assert!(names.contains(&"snap/db".to_string()), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with('.') && !n.starts_with("member")),
        "{names:?}"
    );

    // Bootstrap on a node whose data dir is in use.
    let status = node
        .bootstrap(machine::BootstrapRequest {
            recover_etcd: false,
            recover_skip_hash_check: false,
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::AlreadyExists);
    assert_eq!(status.message(), "etcd data directory is not empty");

    // Through Bootstrap: a raw db fails the hash check in the pre stage, after the RPC returned OK.
    put(node, "/registry/pods/default/marker", "from-raw-db-time");
    let marker_before_copy = get(node, "/registry/pods/default/marker");
    assert!(marker_before_copy.is_some());
    reset_and_wait_preparing(node).await;
    node.etcd_recover(upload(raw.clone()))
        .await
        .expect("upload accepted");
    node.bootstrap(machine::BootstrapRequest {
        recover_etcd: true,
        recover_skip_hash_check: false,
    })
    .await
    .expect("bootstrap returns at once");
    wait_state(node, "Failed", Duration::from_secs(15)).await;
    let services = node.service_list().await.expect("services");
    let etcd = services.messages[0]
        .services
        .iter()
        .find(|s| s.id == "etcd")
        .expect("etcd");
    let last = etcd
        .events
        .as_ref()
        .and_then(|e| e.events.last())
        .expect("event");
    assert_eq!(
        last.msg,
        "Failed to run pre stage: error recovering from the snapshot: snapshot missing hash but --skip-hash-check=false"
    );
    let again = node
        .bootstrap(machine::BootstrapRequest {
            recover_etcd: true,
            recover_skip_hash_check: true,
        })
        .await
        .expect_err("leftovers");
    assert_eq!(
        again.code(),
        tonic::Code::AlreadyExists,
        "a failed restore leaves the db behind"
    );

    reset_and_wait_preparing(node).await;
    node.etcd_recover(upload(raw))
        .await
        .expect("upload accepted");
    node.bootstrap(machine::BootstrapRequest {
        recover_etcd: true,
        recover_skip_hash_check: true,
    })
    .await
    .expect("bootstrap");
    wait_healthy(node, Duration::from_secs(20)).await;
    assert_eq!(
        get(node, "/registry/namespaces/default").map(|v| v.contains("Namespace")),
        Some(true),
        "raw db data is back"
    );
    assert_eq!(
        get(node, "/registry/pods/default/marker"),
        None,
        "written after the copy"
    );

    // Missing files and relative paths.
    let missing = node
        .read(machine::ReadRequest {
            path: "/var/lib/etcd/nope".to_string(),
        })
        .await
        .err()
        .expect("missing");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    cluster.shutdown().await;
}
