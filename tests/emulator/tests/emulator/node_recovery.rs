//! The disaster-recovery procedure of the Talos guide, at the API level, against real etcd.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use talos_api::machine;
use talos_emulator::node::{EtcdVolume, Node};

use crate::node_support::*;

fn reset_ephemeral() -> machine::ResetRequest {
    machine::ResetRequest {
        graceful: false,
        reboot: true,
        system_partitions_to_wipe: vec![machine::ResetPartitionSpec {
            label: "EPHEMERAL".to_string(),
            wipe: true,
        }],
        user_disks_to_wipe: Vec::new(),
        mode: machine::reset_request::WipeMode::All as i32,
    }
}

async fn member_ids(node: &Node) -> BTreeSet<(u64, String, bool)> {
    let list = node
        .etcd_member_list(machine::EtcdMemberListRequest { query_local: true })
        .await
        .expect("member list");
    list.messages[0]
        .members
        .iter()
        .map(|m| (m.id, m.hostname.clone(), m.is_learner))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_from_snapshot_brings_back_a_three_member_cluster() {
    let cluster = TestCluster::start(
        Ipv4Addr::new(127, 0, 7, 1),
        3,
        0,
        false,
        EtcdVolume::Directory,
        200,
    )
    .await;
    let nodes = &cluster.nodes;
    let seeded = count_prefix(&nodes[0], "/registry/");
    assert_eq!(seeded, 200);

    // Backup, then a write the snapshot does not have.
    let snapshot = collect(nodes[0].etcd_snapshot().await.expect("snapshot"))
        .await
        .expect("snapshot streams");
    put(
        &nodes[0],
        "/registry/configmaps/default/written-after-snapshot",
        "lost",
    );

    // Disaster: two members die, quorum is gone.
    nodes[1].kill_etcd().await;
    nodes[2].kill_etcd().await;
    wait_until(
        "node 1 to report etcd down",
        Duration::from_secs(5),
        || async { nodes[1].etcd_service_state() == Some("Waiting") },
    )
    .await;

    // Wipe EPHEMERAL everywhere; every node comes back waiting to join.
    let boot_ids: Vec<String> = nodes.iter().map(Node::boot_id).collect();
    for node in nodes {
        let reply = node.reset(reset_ephemeral()).await.expect("reset accepted");
        assert!(!reply.messages[0].actor_id.is_empty());
    }
    for (node, old) in nodes.iter().zip(&boot_ids) {
        wait_until("a new boot", Duration::from_secs(20), || async {
            &node.boot_id() != old && node.etcd_service_state() == Some("Preparing")
        })
        .await;
        assert!(node.host_path("/var/lib/etcd").is_some_and(|p| {
            std::fs::read_dir(p)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false)
        }));
    }
    wait_until("the join notice in the kernel log", Duration::from_secs(5), || async {
        nodes[2].kernel_log().iter().any(|l| l.contains("etcd is waiting to join the cluster, if this node is the first node in the cluster, please run `talosctl bootstrap`"))
    })
    .await;

    // Recover on one node.
    nodes[0]
        .etcd_recover(upload(snapshot.clone()))
        .await
        .expect("upload accepted");
    nodes[0]
        .bootstrap(machine::BootstrapRequest {
            recover_etcd: true,
            recover_skip_hash_check: false,
        })
        .await
        .expect("bootstrap accepted");
    wait_healthy(&nodes[0], Duration::from_secs(20)).await;

    let log = nodes[0].kernel_log();
    let recovering = log
        .iter()
        .find(|l| l.contains("recovering etcd from snapshot: hash "))
        .expect("recover line in the kernel log");
    let status_file = cluster.path().join("snapshot.db");
    std::fs::write(&status_file, &snapshot).expect("write");
    let status = snapshot_status(&status_file);
    let expected = format!(
        "recovering etcd from snapshot: hash {:08x}, revision {}, total keys {}, total size {}",
        status["hash"].as_u64().unwrap_or_default(),
        status["revision"],
        status["totalKey"],
        status["totalSize"]
    );
    assert!(
        recovering.ends_with(&expected),
        "{recovering} vs {expected}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("\"msg\":\"restored snapshot\"")
                && l.contains("/var/lib/etcd.snapshot")),
        "{log:#?}"
    );
    assert!(
        !nodes[0]
            .host_path("/var/lib/etcd.snapshot")
            .expect("path")
            .exists(),
        "the upload is removed after restore"
    );

    assert_eq!(
        count_prefix(&nodes[0], "/registry/"),
        seeded,
        "the snapshot's data is back"
    );
    assert_eq!(
        get(
            &nodes[0],
            "/registry/configmaps/default/written-after-snapshot"
        ),
        None
    );

    // The others join the restored cluster on their own.
    wait_healthy(&nodes[1], Duration::from_secs(40)).await;
    wait_healthy(&nodes[2], Duration::from_secs(40)).await;
    wait_until(
        "all members promoted and agreeing",
        Duration::from_secs(30),
        || async {
            let views = futures::future::join_all(nodes.iter().map(member_ids)).await;
            views.iter().all(|v| {
                v.len() == 3
                    && v.iter()
                        .all(|(_, name, learner)| !learner && !name.is_empty())
            }) && views.windows(2).all(|w| w[0] == w[1])
        },
    )
    .await;
    assert_eq!(
        get(&nodes[2], "/registry/namespaces/default").map(|v| v.contains("Namespace")),
        Some(true)
    );

    let services = nodes[0].service_list().await.expect("services");
    let etcd = services.messages[0]
        .services
        .iter()
        .find(|s| s.id == "etcd")
        .expect("etcd service");
    let events: Vec<&str> = etcd
        .events
        .as_ref()
        .expect("events")
        .events
        .iter()
        .map(|e| e.msg.as_str())
        .collect();
    assert!(
        events.contains(&"Bootstrap requested") || events.contains(&"Health check successful"),
        "{events:?}"
    );
    assert_eq!(etcd.state, "Running");

    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_reset_leaves_etcd_and_needs_quorum() {
    let cluster = TestCluster::start(
        Ipv4Addr::new(127, 0, 5, 11),
        3,
        0,
        false,
        EtcdVolume::Directory,
        0,
    )
    .await;
    let nodes = &cluster.nodes;
    let status = nodes[2].etcd_status().await.expect("status");
    let old_id = status.messages[0]
        .member_status
        .as_ref()
        .expect("member status")
        .member_id;

    let mut graceful = reset_ephemeral();
    graceful.graceful = true;
    let before = nodes[2].boot_id();
    nodes[2]
        .reset(graceful.clone())
        .await
        .expect("reset accepted");
    // Leaving etcd first may wait for a busy cluster's peers (the emulator retries like Talos).
    wait_until(
        "the reset node to boot again",
        Duration::from_secs(60),
        || async { nodes[2].boot_id() != before },
    )
    .await;
    wait_healthy(&nodes[2], Duration::from_secs(40)).await;
    wait_until(
        "the node to be a voting member again",
        Duration::from_secs(20),
        || async {
            let members = member_ids(&nodes[0]).await;
            members.len() == 3
                && members
                    .iter()
                    .all(|(id, _, learner)| !learner && *id != old_id)
        },
    )
    .await;
    let gone = nodes[0]
        .etcd_remove_member_by_id(machine::EtcdRemoveMemberByIdRequest { member_id: old_id })
        .await
        .expect_err("the old member left");
    assert_eq!(gone.code(), tonic::Code::NotFound);

    // Without quorum a graceful reset cannot leave etcd: the sequence fails and nothing is wiped.
    nodes[1].kill_etcd().await;
    nodes[2].kill_etcd().await;
    let before = nodes[0].boot_id();
    nodes[0].reset(graceful).await.expect("reset accepted");
    wait_until("the reset to fail", Duration::from_secs(20), || async {
        nodes[0]
            .kernel_log()
            .iter()
            .any(|l| l.starts_with("[talos] reset failed: failed to leave etcd cluster"))
    })
    .await;
    assert_eq!(nodes[0].boot_id(), before);
    assert!(
        std::fs::read_dir(nodes[0].host_path("/var/lib/etcd").expect("path"))
            .expect("data dir")
            .next()
            .is_some()
    );

    cluster.shutdown().await;
}
