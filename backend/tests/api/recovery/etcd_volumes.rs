//! Each reset wipes the volume its node keeps etcd's data on: `ETCD` where the node has a
//! partition of its own (a wipe of EPHEMERAL would leave the data), EPHEMERAL otherwise, with
//! the reason on the step when the node has no ETCD volume or could not be read. Against the
//! fake cluster, the console's client on the emulator, and a whole recovery on the emulator
//! (127.0.111.x to 127.0.112.x).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use talos_dr::talos::{
    ResetOptions, TalosApi, TalosClient, TalosError, TalosRecoveryApi, talosconfig,
};
use talos_dr_shared::recovery::{EtcdDataVolume, IncidentView, StepKind, StepState, TimelineKind};
use talos_emulator::{Emulator, EmulatorOptions, EtcdVolume, Role};

use super::emulated_flow::{Options, recover};
use super::planning::{approve, planned_incident, request, run};
use super::{PATIENCE, fake_rig, step, wait_view};
use crate::fake::{RecoveryCall, RecoveryCallKind, node_name};

/// Each reset of `plan` wipes the volume its node keeps etcd's data on, as the emulator was
/// told (`etcd_volume_on`, by hostname; a directory on EPHEMERAL for the others), and shows the
/// matching talosctl command.
pub(super) fn assert_resets_wipe_etcd_data(
    plan: &IncidentView,
    etcd_volume_on: &BTreeMap<String, EtcdVolume>,
) {
    for reset in plan.steps.iter().filter(|s| s.kind == StepKind::ResetNode) {
        let target = reset.target.as_ref().expect("a reset names its node");
        let volume = etcd_volume_on.get(&target.hostname);
        let label = match volume {
            Some(EtcdVolume::Partition) => "ETCD",
            _ => "EPHEMERAL",
        };
        assert_eq!(
            reset.params.wipe_labels,
            vec![label.to_string()],
            "{}",
            target.hostname
        );
        let command = format!(
            "talosctl -n {} reset --graceful=false --reboot --system-labels-to-wipe={label}",
            target.address
        );
        if volume == Some(&EtcdVolume::Absent) {
            // The step says why it wipes EPHEMERAL on a Talos without an ETCD volume.
            assert!(
                reset.talosctl.starts_with(&format!("{command}  # "))
                    && reset.talosctl.contains("before v1.10"),
                "{}",
                reset.talosctl
            );
        } else {
            assert_eq!(reset.talosctl, command);
        }
    }
}

#[tokio::test]
async fn the_plan_wipes_etcd_on_a_partition_and_says_why_it_wipes_ephemeral_elsewhere() {
    let rig = fake_rig(3, Default::default()).await;
    rig.fake.update(&node_name(1), |n| {
        n.etcd_volume = Ok(EtcdDataVolume::Absent);
    });
    rig.fake.update(&node_name(2), |n| {
        n.etcd_volume = Ok(EtcdDataVolume::Partition {
            location: Some("/dev/sdb1".into()),
        });
    });
    rig.fake.update(&node_name(3), |n| {
        n.etcd_volume = Err(TalosError::Refused("permission denied".into()));
    });
    let view = planned_incident(&rig).await;

    let old = step(&view, StepKind::ResetNode, Some("cp-1"));
    assert_eq!(old.params.wipe_labels, vec!["EPHEMERAL".to_string()]);
    assert_eq!(old.params.etcd_data_volume, Some(EtcdDataVolume::Absent));
    assert!(
        old.talosctl.starts_with(
            "talosctl -n 10.0.0.1 reset --graceful=false --reboot --system-labels-to-wipe=EPHEMERAL  # "
        ) && old.talosctl.contains("no ETCD volume"),
        "{}",
        old.talosctl
    );

    let partition = step(&view, StepKind::ResetNode, Some("cp-2"));
    assert_eq!(partition.params.wipe_labels, vec!["ETCD".to_string()]);
    assert_eq!(
        partition.talosctl,
        "talosctl -n 10.0.0.2 reset --graceful=false --reboot --system-labels-to-wipe=ETCD"
    );

    // Not read: EPHEMERAL, as on a default install, and the step tells the approver to check.
    let unread = step(&view, StepKind::ResetNode, Some("cp-3"));
    assert_eq!(unread.params.wipe_labels, vec!["EPHEMERAL".to_string()]);
    assert!(matches!(
        &unread.params.etcd_data_volume,
        Some(EtcdDataVolume::Unreadable { reason }) if reason.contains("permission denied")
    ));
    assert!(
        unread
            .talosctl
            .contains("talosctl -n 10.0.0.3 get volumestatus ETCD"),
        "{}",
        unread.talosctl
    );
    // The choice is loud in the timeline, naming the node.
    let chosen = view
        .timeline
        .iter()
        .find(|e| e.kind == TimelineKind::Snapshot && e.text.contains("chose snapshot"))
        .expect("the choice is in the timeline");
    assert!(chosen.loud, "{}", chosen.text);
    assert!(
        chosen
            .text
            .contains("cp-3 (10.0.0.3): the reset wipes EPHEMERAL")
            && chosen
                .text
                .contains("cp-2 (10.0.0.2): the reset wipes ETCD"),
        "{}",
        chosen.text
    );

    // What the node gets is what was approved: ETCD.
    let team = &rig.team;
    let requested = request(&team.operator, &view, "cp-2").await;
    assert_eq!(requested.status, 200, "{}", requested.body);
    let approved = approve(&team.approver, &view, "cp-2").await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    let ran = run(&team.operator, &view, "cp-2", "cp-2").await;
    assert_eq!(ran.status, 202, "{}", ran.body);
    let id = view.incident.id.clone();
    wait_view(&team.operator, &id, "the reset to be sent", PATIENCE, |v| {
        !matches!(
            step(v, StepKind::ResetNode, Some("cp-2")).state,
            StepState::Approved | StepState::Claimed
        )
    })
    .await;
    let resets: Vec<RecoveryCall> = rig
        .fake
        .state_changes()
        .into_iter()
        .filter(|c| c.kind() == RecoveryCallKind::Reset)
        .collect();
    match resets.as_slice() {
        [RecoveryCall::Reset { node, options }] => {
            assert_eq!(node, &node_name(2));
            assert_eq!(options.wipe_labels, vec!["ETCD".to_string()]);
        }
        other => panic!("one reset of cp-2: {other:?}"),
    }
}

fn client(emulator: &Emulator, role: Role) -> TalosClient {
    let ctx = talosconfig::load(&emulator.talosconfig_path(role), None)
        .expect("the emulator's talosconfig loads");
    TalosClient::new(&ctx, Duration::from_secs(3)).expect("a Talos client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reads_each_layout_and_ephemeral_leaves_a_partition_in_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = EmulatorOptions::new(3, Ipv4Addr::new(127, 0, 112, 2), dir.path().join("c"));
    options.seed_keys = 10;
    options
        .etcd_volume_on
        .insert("cp-2".into(), EtcdVolume::Partition);
    options
        .etcd_volume_on
        .insert("cp-3".into(), EtcdVolume::Absent);
    let emulator = Emulator::start(options)
        .await
        .expect("the emulated cluster starts");
    let ips: Vec<String> = emulator
        .control_plane_ips()
        .iter()
        .map(|ip| ip.to_string())
        .collect();

    // Read with the least role that may: os:reader.
    let reader = client(&emulator, Role::Reader);
    assert_eq!(
        reader.etcd_data_volume(&ips[0]).await,
        Ok(EtcdDataVolume::Directory)
    );
    assert_eq!(
        reader.etcd_data_volume(&ips[1]).await,
        Ok(EtcdDataVolume::Partition {
            location: Some("/dev/sdb1".into())
        })
    );
    assert_eq!(
        reader.etcd_data_volume(&ips[2]).await,
        Ok(EtcdDataVolume::Absent),
        "NotFound is a Talos without an ETCD volume"
    );
    // os:etcd:backup may not read COSI resources: a failure, never taken for "absent".
    let backup = client(&emulator, Role::EtcdBackup);
    assert_eq!(
        backup.etcd_data_volume(&ips[0]).await,
        Err(TalosError::Refused("permission denied".into()))
    );

    // A wipe of EPHEMERAL leaves the partition's etcd data; only ETCD removes it.
    let partition_node = emulator
        .node(emulator.control_plane_ips()[1])
        .expect("cp-2")
        .clone();
    let etcd_dir = partition_node.host_path("/var/lib/etcd").expect("etcd dir");
    assert!(etcd_dir.join("member").is_dir());
    let admin = client(&emulator, Role::Admin);
    let wipe = |labels: &[&str]| ResetOptions {
        graceful: false,
        reboot: true,
        wipe_labels: labels.iter().map(|l| l.to_string()).collect(),
    };
    let before = admin.boot_id(&ips[1]).await.expect("boot id");
    admin
        .reset(&ips[1], &wipe(&["EPHEMERAL"]))
        .await
        .expect("reset accepted");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if admin.boot_id(&ips[1]).await.is_ok_and(|id| id != before) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "cp-2 rebooted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        etcd_dir.join("member").is_dir(),
        "etcd's data on its own partition survives a wipe of EPHEMERAL"
    );
    // The node without an ETCD volume refuses the label before doing anything.
    let refused = admin.reset(&ips[2], &wipe(&["ETCD"])).await;
    assert!(
        matches!(refused, Err(TalosError::Refused(_))),
        "{refused:?}"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_recover_when_one_keeps_etcd_on_its_own_partition() {
    recover(
        Ipv4Addr::new(127, 0, 111, 2),
        Options {
            nodes: 3,
            init_node: false,
            raw_copy: false,
            etcd_volume_on: BTreeMap::from([("cp-2".to_string(), EtcdVolume::Partition)]),
            recreate: false,
        },
    )
    .await;
}
