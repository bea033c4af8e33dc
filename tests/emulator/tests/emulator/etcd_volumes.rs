//! Where etcd's data lives per node (`VolumeStatuses.block.talos.dev` `ETCD`), and what each
//! Reset wipe list does to it: a dedicated ETCD partition survives a wipe of EPHEMERAL.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use prost::Message;
use talos_api::cosi::resource::GetRequest;
use talos_api::machine;
use talos_api::talos::resource::definitions::block::VolumeStatusSpec;
use talos_api::talos::resource::definitions::enums::BlockVolumeType;
use talos_emulator::node::Node;
use talos_emulator::{Emulator, EmulatorOptions, EtcdVolume, Role};
use tonic::Code;

use crate::node_support::{put, wait_until};

fn reset(labels: &[&str]) -> machine::ResetRequest {
    machine::ResetRequest {
        graceful: false,
        reboot: true,
        system_partitions_to_wipe: labels
            .iter()
            .map(|l| machine::ResetPartitionSpec {
                label: l.to_string(),
                wipe: true,
            })
            .collect(),
        user_disks_to_wipe: Vec::new(),
        mode: machine::reset_request::WipeMode::All as i32,
    }
}

fn etcd_volume_request() -> GetRequest {
    GetRequest {
        namespace: "runtime".into(),
        r#type: "VolumeStatuses.block.talos.dev".into(),
        id: "ETCD".into(),
        options: None,
    }
}

/// The ETCD volume as a reader sees it through the node's own API.
async fn read_etcd_volume(
    emulator: &Emulator,
    role: Role,
    ip: Ipv4Addr,
) -> Result<VolumeStatusSpec, tonic::Status> {
    let mut state = emulator.state_client(role, ip).await.expect("state client");
    let reply = state.get(etcd_volume_request()).await?.into_inner();
    let spec = reply.resource.and_then(|r| r.spec).expect("spec");
    Ok(VolumeStatusSpec::decode(spec.proto_spec.as_slice()).expect("decodes"))
}

fn has_member_data(dir: &Path) -> bool {
    dir.join("member").is_dir()
}

/// Resets `node` with `labels` and waits for the new boot.
async fn reset_and_reboot(node: &Node, labels: &[&str]) {
    let before = node.boot_id();
    node.reset(reset(labels)).await.expect("reset accepted");
    wait_until(
        &format!("{} to boot again after wiping {labels:?}", node.hostname()),
        Duration::from_secs(20),
        || async { node.boot_id() != before && node.etcd_service_state().is_some() },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_reports_its_etcd_volume_and_only_wiping_etcd_clears_a_partition() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = EmulatorOptions::new(3, Ipv4Addr::new(127, 0, 110, 1), dir.path());
    options.seed_keys = 10;
    options
        .etcd_volume_on
        .insert("cp-2".into(), EtcdVolume::Partition);
    options
        .etcd_volume_on
        .insert("cp-3".into(), EtcdVolume::Absent);
    let emulator = Emulator::start(options).await.expect("emulator starts");
    let ips = emulator.control_plane_ips().to_vec();
    let nodes: Vec<Node> = ips
        .iter()
        .map(|ip| emulator.node(*ip).expect("node").clone())
        .collect();

    // What each node says, to a reader (volume statuses are not sensitive).
    let directory = read_etcd_volume(&emulator, Role::Reader, ips[0])
        .await
        .expect("cp-1 has ETCD");
    assert_eq!(
        directory.r#type,
        BlockVolumeType::VolumeTypeDirectory as i32
    );
    assert_eq!(directory.location, "");
    let partition = read_etcd_volume(&emulator, Role::Reader, ips[1])
        .await
        .expect("cp-2 has ETCD");
    assert_eq!(
        partition.r#type,
        BlockVolumeType::VolumeTypePartition as i32
    );
    assert_eq!(partition.location, "/dev/sdb1");
    let absent = read_etcd_volume(&emulator, Role::Reader, ips[2])
        .await
        .expect_err("cp-3 runs a Talos without ETCD");
    assert_eq!(absent.code(), Code::NotFound);
    assert!(
        absent.message().contains("doesn't exist"),
        "{}",
        absent.message()
    );
    // etcd:backup reads no COSI resources at all.
    let backup = read_etcd_volume(&emulator, Role::EtcdBackup, ips[0])
        .await
        .expect_err("etcd:backup");
    assert_eq!(backup.code(), Code::PermissionDenied);

    // Validation before anything happens: ETCD must exist, and a directory ETCD goes only
    // together with EPHEMERAL.
    let no_volume = nodes[2]
        .reset(reset(&["ETCD"]))
        .await
        .expect_err("cp-3 has no ETCD volume");
    assert!(
        no_volume
            .message()
            .contains("failed to get volume status with label"),
        "{}",
        no_volume.message()
    );
    let not_located = nodes[0]
        .reset(reset(&["ETCD"]))
        .await
        .expect_err("a directory ETCD alone");
    assert!(
        not_located.message().contains("not located"),
        "{}",
        not_located.message()
    );

    // The disaster: quorum lost.
    put(&nodes[0], "/registry/pods/default/before", "yes");
    nodes[1].kill_etcd().await;
    nodes[2].kill_etcd().await;

    // EPHEMERAL on the partition node: /var is wiped, etcd's data stays.
    let etcd_dir = nodes[1].host_path("/var/lib/etcd").expect("etcd dir");
    let var_marker = nodes[1].host_path("/var/lib/marker").expect("marker");
    std::fs::write(&var_marker, b"on EPHEMERAL").expect("marker");
    assert!(has_member_data(&etcd_dir));
    reset_and_reboot(&nodes[1], &["EPHEMERAL"]).await;
    assert!(!var_marker.exists(), "EPHEMERAL was wiped");
    assert!(
        has_member_data(&etcd_dir),
        "etcd's data on its own partition survives a wipe of EPHEMERAL"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_ne!(
        nodes[1].etcd_service_state(),
        Some("Preparing"),
        "etcd found its old data and did not wait for a bootstrap"
    );

    // ETCD on the partition node: etcd's data is gone and etcd waits in Preparing.
    reset_and_reboot(&nodes[1], &["ETCD"]).await;
    wait_until(
        "etcd on cp-2 to wait in Preparing",
        Duration::from_secs(20),
        || async { nodes[1].etcd_service_state() == Some("Preparing") },
    )
    .await;
    assert!(!has_member_data(&etcd_dir), "ETCD was wiped");

    // EPHEMERAL on the directory node and on the node without ETCD wipes etcd's data.
    for node in [&nodes[0], &nodes[2]] {
        let dir = node.host_path("/var/lib/etcd").expect("etcd dir");
        reset_and_reboot(node, &["EPHEMERAL"]).await;
        wait_until(
            &format!("etcd on {} to wait in Preparing", node.hostname()),
            Duration::from_secs(20),
            || async { node.etcd_service_state() == Some("Preparing") },
        )
        .await;
        assert!(
            !has_member_data(&dir),
            "{}: etcd's data wiped",
            node.hostname()
        );
    }

    emulator.shutdown().await;
}

#[tokio::test]
async fn a_volume_override_for_an_unknown_node_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = EmulatorOptions::new(1, Ipv4Addr::new(127, 0, 110, 20), dir.path());
    options
        .etcd_volume_on
        .insert("cp-9".into(), EtcdVolume::Partition);
    let error = match Emulator::start(options).await {
        Ok(emulator) => {
            emulator.shutdown().await;
            panic!("a cluster with an override for cp-9 started");
        }
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("etcd_volume_on") && error.contains("cp-9"),
        "{error}"
    );
}
