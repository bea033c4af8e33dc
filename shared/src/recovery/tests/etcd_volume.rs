//! The plan's resets wipe the volume each node keeps etcd's data on.

use super::*;

fn reset_of<'a>(plan: &'a [PlannedStep], hostname: &str) -> &'a PlannedStep {
    plan.iter()
        .find(|s| {
            s.kind == StepKind::ResetNode
                && s.target.as_ref().is_some_and(|t| t.hostname == hostname)
        })
        .expect("a reset for the node")
}

#[test]
fn each_reset_wipes_the_volume_its_node_keeps_etcd_data_on() {
    let mut nodes = [
        node("10.0.0.2", "cp-1", MachineType::Controlplane, true),
        node("10.0.0.3", "cp-2", MachineType::Controlplane, true),
        node("10.0.0.4", "cp-3", MachineType::Controlplane, true),
        node("10.0.0.5", "cp-4", MachineType::Controlplane, true),
    ];
    nodes[1].etcd_volume = EtcdDataVolume::Partition {
        location: Some("/dev/sdb1".into()),
    };
    nodes[2].etcd_volume = EtcdDataVolume::Disk {
        location: Some("/dev/sdc".into()),
    };
    nodes[3].etcd_volume = EtcdDataVolume::Absent;
    let plan = build_plan(&nodes, &snapshot(false), "10.0.0.2");

    let directory = reset_of(&plan, "cp-1");
    assert_eq!(directory.params.wipe_labels, vec!["EPHEMERAL".to_string()]);
    assert_eq!(
        directory.params.etcd_data_volume,
        Some(EtcdDataVolume::Directory)
    );
    assert_eq!(
        directory.talosctl,
        "talosctl -n 10.0.0.2 reset --graceful=false --reboot --system-labels-to-wipe=EPHEMERAL"
    );

    let partition = reset_of(&plan, "cp-2");
    assert_eq!(partition.params.wipe_labels, vec!["ETCD".to_string()]);
    assert_eq!(
        partition.talosctl,
        "talosctl -n 10.0.0.3 reset --graceful=false --reboot --system-labels-to-wipe=ETCD"
    );
    let disk = reset_of(&plan, "cp-3");
    assert_eq!(disk.params.wipe_labels, vec!["ETCD".to_string()]);

    // Talos before v1.10: EPHEMERAL, and the step says why.
    let old = reset_of(&plan, "cp-4");
    assert_eq!(old.params.wipe_labels, vec!["EPHEMERAL".to_string()]);
    assert!(
        old.talosctl.starts_with(
            "talosctl -n 10.0.0.5 reset --graceful=false --reboot --system-labels-to-wipe=EPHEMERAL  # "
        ),
        "{}",
        old.talosctl
    );
    assert!(old.talosctl.contains("before v1.10"), "{}", old.talosctl);
}

#[test]
fn an_unreadable_etcd_volume_wipes_ephemeral_and_the_step_warns_with_the_check_to_make() {
    let mut n = node("10.0.0.2", "cp-1", MachineType::Controlplane, true);
    n.etcd_volume = EtcdDataVolume::Unreadable {
        reason: "deadline exceeded".into(),
    };
    let plan = build_plan(&[n], &snapshot(false), "10.0.0.2");
    let reset = reset_of(&plan, "cp-1");
    assert_eq!(reset.params.wipe_labels, vec!["EPHEMERAL".to_string()]);
    assert!(matches!(
        reset.params.etcd_data_volume,
        Some(EtcdDataVolume::Unreadable { .. })
    ));
    assert!(
        reset.talosctl.contains("deadline exceeded")
            && reset
                .talosctl
                .contains("talosctl -n 10.0.0.2 get volumestatus ETCD"),
        "{}",
        reset.talosctl
    );
}

#[test]
fn no_etcd_volume_ever_gives_an_empty_wipe_list() {
    let volumes = [
        EtcdDataVolume::Partition { location: None },
        EtcdDataVolume::Disk { location: None },
        EtcdDataVolume::Directory,
        EtcdDataVolume::Absent,
        EtcdDataVolume::Unreadable {
            reason: String::new(),
        },
    ];
    for volume in volumes {
        let mut n = node("10.0.0.2", "cp-1", MachineType::Controlplane, true);
        n.etcd_volume = volume.clone();
        let plan = build_plan(&[n], &snapshot(false), "10.0.0.2");
        let reset = reset_of(&plan, "cp-1");
        assert_eq!(reset.params.wipe_labels.len(), 1, "{volume:?}");
        assert!(!reset.params.wipe_labels[0].is_empty(), "{volume:?}");
    }
}

#[test]
fn step_params_without_an_etcd_volume_still_parse() {
    // Plans stored before the volume was recorded.
    let params: StepParams =
        serde_json::from_str(r#"{"wipe_labels":["EPHEMERAL"]}"#).expect("parse");
    assert_eq!(params.etcd_data_volume, None);
    assert_eq!(params.wipe_labels, vec!["EPHEMERAL".to_string()]);
}
