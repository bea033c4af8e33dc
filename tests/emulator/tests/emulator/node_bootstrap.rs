//! Machine types, staged configs, reboots, resets and the ETCD volume layouts.

use std::net::Ipv4Addr;
use std::time::Duration;

use talos_api::cosi::resource as cosi;
use talos_api::machine;
use talos_emulator::node::{EtcdVolume, MachineType, Node};

use crate::node_support::*;

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

async fn config(node: &Node, id: &str) -> String {
    let response = node
        .cosi_get(cosi::GetRequest {
            namespace: "config".to_string(),
            r#type: "MachineConfigs.config.talos.dev".to_string(),
            id: id.to_string(),
            options: None,
        })
        .await
        .expect("config resource");
    let spec = response.resource.and_then(|r| r.spec).expect("spec");
    let decoded: talos_api::resource::config::MachineConfigSpec =
        prost::Message::decode(spec.proto_spec.as_slice()).expect("proto spec");
    String::from_utf8(decoded.yaml_marshalled).expect("utf-8")
}

async fn reboot_and_wait(node: &Node) {
    let before = node.boot_id();
    let reply = node
        .reboot(machine::RebootRequest { mode: 0 })
        .await
        .expect("reboot accepted");
    assert!(!reply.messages[0].actor_id.is_empty());
    wait_until("a new boot id", Duration::from_secs(15), || async {
        node.boot_id() != before
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_node_ignores_recover_until_converted_to_controlplane() {
    let cluster = TestCluster::start(
        Ipv4Addr::new(127, 0, 8, 1),
        1,
        0,
        true,
        EtcdVolume::Directory,
        20,
    )
    .await;
    let node = &cluster.nodes[0];
    assert_eq!(node.machine_type(), Some(MachineType::Init));
    let machine_type = node
        .cosi_get(cosi::GetRequest {
            namespace: "config".to_string(),
            r#type: "MachineTypes.config.talos.dev".to_string(),
            id: "machine-type".to_string(),
            options: None,
        })
        .await
        .expect("machine type");
    assert_eq!(
        machine_type
            .resource
            .and_then(|r| r.spec)
            .map(|s| s.yaml_spec),
        Some("init".to_string())
    );

    let snapshot = collect(node.etcd_snapshot().await.expect("snapshot"))
        .await
        .expect("streams");
    node.reset(reset(&["EPHEMERAL"])).await.expect("reset");
    // An init node with an empty data dir creates a brand-new cluster by itself.
    wait_until(
        "the wiped init node to start a fresh etcd",
        Duration::from_secs(20),
        || async { node.etcd_healthy() && get(node, "/registry/namespaces/default").is_none() },
    )
    .await;
    node.etcd_recover(upload(snapshot.clone()))
        .await
        .expect("upload accepted");
    let refused = node
        .bootstrap(machine::BootstrapRequest {
            recover_etcd: true,
            recover_skip_hash_check: false,
        })
        .await
        .expect_err("data dir in use");
    assert_eq!(refused.code(), tonic::Code::AlreadyExists);
    assert_eq!(
        get(node, "/registry/namespaces/default"),
        None,
        "the snapshot was not restored"
    );

    // Convert init -> controlplane: staged until the reboot.
    let active = config(node, "v1alpha1").await;
    let converted = active.replace("type: init", "type: controlplane");
    let applied = node
        .apply_configuration(machine::ApplyConfigurationRequest {
            data: converted.clone().into_bytes(),
            mode: machine::apply_configuration_request::Mode::Staged as i32,
            dry_run: false,
            try_mode_timeout: None,
        })
        .await
        .expect("staged");
    assert_eq!(
        applied.messages[0].mode_details,
        "Staged configuration to be applied after the next reboot"
    );
    assert_eq!(config(node, "persistent").await, converted);
    assert_eq!(config(node, "v1alpha1").await, active);
    assert_eq!(node.machine_type(), Some(MachineType::Init));

    // The documented conversion: reboot into the staged config.
    reboot_and_wait(node).await;
    assert_eq!(node.machine_type(), Some(MachineType::ControlPlane));
    assert_eq!(config(node, "v1alpha1").await, converted);
    wait_healthy(node, Duration::from_secs(20)).await;

    // Wipe etcd: now the node waits to join, and recovery works.
    node.reset(reset(&["EPHEMERAL"])).await.expect("reset");
    wait_state(node, "Preparing", Duration::from_secs(20)).await;
    node.etcd_recover(upload(snapshot)).await.expect("upload");
    node.bootstrap(machine::BootstrapRequest {
        recover_etcd: true,
        recover_skip_hash_check: false,
    })
    .await
    .expect("bootstrap");
    wait_healthy(node, Duration::from_secs(20)).await;
    assert!(
        get(node, "/registry/namespaces/default").is_some(),
        "the snapshot was restored"
    );
    reboot_and_wait(node).await;
    wait_healthy(node, Duration::from_secs(20)).await;
    assert!(
        get(node, "/registry/namespaces/default").is_some(),
        "data survives a reboot"
    );

    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_partition_survives_an_ephemeral_wipe_and_workers_refuse_etcd_apis() {
    let cluster = TestCluster::start(
        Ipv4Addr::new(127, 0, 9, 1),
        1,
        1,
        false,
        EtcdVolume::Partition,
        10,
    )
    .await;
    let (node, worker) = (&cluster.nodes[0], &cluster.nodes[1]);
    put(node, "/registry/pods/default/kept", "yes");

    let unknown = node
        .reset(reset(&["NOPE"]))
        .await
        .expect_err("unknown label");
    assert!(unknown.message().contains("NOPE"), "{}", unknown.message());

    let before = node.boot_id();
    let marker = node.host_path("/var/lib/marker").expect("path");
    std::fs::write(&marker, b"on EPHEMERAL").expect("marker");
    node.reset(reset(&["EPHEMERAL"])).await.expect("reset");
    wait_until(
        "the node to boot again after the wipe",
        Duration::from_secs(20),
        || async { node.boot_id() != before },
    )
    .await;
    assert!(!marker.exists(), "EPHEMERAL was wiped");
    wait_healthy(node, Duration::from_secs(20)).await;
    assert_eq!(
        get(node, "/registry/pods/default/kept"),
        Some("yes".to_string())
    );

    let refused = worker
        .etcd_member_list(machine::EtcdMemberListRequest { query_local: true })
        .await
        .expect_err("worker");
    assert_eq!(refused.code(), tonic::Code::Unimplemented);
    assert_eq!(
        refused.message(),
        "etcd members is only available on control plane nodes"
    );
    assert!(worker.etcd_service_state().is_none());
    let services = worker.service_list().await.expect("services");
    assert!(
        services.messages[0]
            .services
            .iter()
            .any(|s| s.id == "kubelet" && s.state == "Running")
    );

    // An empty wipe list wipes the whole system disk, STATE included: the worker loses its config.
    let before = worker.boot_id();
    let mut everything = reset(&[]);
    everything.system_partitions_to_wipe.clear();
    worker.reset(everything).await.expect("reset");
    wait_until(
        "the worker to boot without config",
        Duration::from_secs(15),
        || async { worker.boot_id() != before },
    )
    .await;
    assert_eq!(worker.machine_type(), None);
    let unconfigured = worker
        .etcd_member_list(machine::EtcdMemberListRequest { query_local: true })
        .await
        .expect_err("maintenance");
    assert_eq!(
        unconfigured.message(),
        "machine type is not set, cannot use etcd members API"
    );
    let unconfigured = worker
        .etcd_recover(upload(vec![0; 10]))
        .await
        .expect_err("maintenance");
    assert_eq!(unconfigured.code(), tonic::Code::Unimplemented);
    // Before /var/lib exists (EPHEMERAL not mounted yet) the upload is refused first.
    let var_lib = worker.host_path("/var/lib").expect("path");
    std::fs::remove_dir_all(&var_lib).expect("unmount /var/lib");
    let early = worker
        .etcd_recover(upload(vec![0; 10]))
        .await
        .expect_err("too early");
    assert_eq!(early.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        early.message(),
        "etcd service is not ready for recovery yet"
    );
    std::fs::create_dir_all(&var_lib).expect("mount /var/lib");
    let machine_type = worker
        .cosi_get(cosi::GetRequest {
            namespace: "config".to_string(),
            r#type: "MachineTypes.config.talos.dev".to_string(),
            id: "machine-type".to_string(),
            options: None,
        })
        .await
        .expect("machine type");
    assert_eq!(
        machine_type
            .resource
            .and_then(|r| r.spec)
            .map(|s| s.yaml_spec),
        Some("unknown".to_string())
    );

    // Service state changes are machine events too.
    let mut events = node
        .events(machine::EventsRequest {
            tail_events: -1,
            tail_id: String::new(),
            tail_seconds: 0,
            with_actor_id: String::new(),
        })
        .await
        .expect("events");
    let first = futures::StreamExt::next(&mut events)
        .await
        .expect("an event")
        .expect("ok");
    assert_eq!(
        first.data.map(|d| d.type_url),
        Some("talos/runtime/machine.ServiceStateEvent".to_string())
    );
    // Dmesg: the whole buffer, or only what comes next when tailing and following.
    let mut follow = node
        .dmesg(machine::DmesgRequest {
            follow: true,
            tail: true,
        })
        .await
        .expect("dmesg");

    // Corrupted data: etcd crash-loops with Talos' restart message.
    node.corrupt_etcd_data().await;
    wait_until(
        "etcd to fail on the corrupted db",
        Duration::from_secs(15),
        || async {
            let services = node.service_list().await.expect("services");
            let etcd = services.messages[0]
                .services
                .iter()
                .find(|s| s.id == "etcd")
                .cloned()
                .expect("etcd");
            etcd.events
                .expect("events")
                .events
                .iter()
                .rev()
                .take(3)
                .any(|e| {
                    e.msg
                        .starts_with("Error running Containerd(etcd), going to restart forever")
                })
                && !node.etcd_healthy()
        },
    )
    .await;
    let record = tokio::time::timeout(
        Duration::from_secs(5),
        futures::StreamExt::next(&mut follow),
    )
    .await
    .expect("a new kernel record")
    .expect("record")
    .expect("ok");
    let line = String::from_utf8(record.bytes).expect("utf-8");
    assert!(
        line.starts_with("user: warning: [") && line.ends_with('\n'),
        "{line:?}"
    );
    let all = collect(
        node.dmesg(machine::DmesgRequest {
            follow: false,
            tail: false,
        })
        .await
        .expect("dmesg"),
    )
    .await
    .expect("records");
    assert!(String::from_utf8_lossy(&all).contains("[talos] "));

    cluster.shutdown().await;
}
