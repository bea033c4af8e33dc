//! The plan: which steps a recovery needs, on which nodes, in which order, from the nodes'
//! machine types and reachability and the chosen snapshot.

use serde::{Deserialize, Serialize};

use super::{ChosenSnapshot, EtcdDataVolume, StepKind, StepParams, StepTarget};
use crate::health::MachineType;

/// What the plan needs to know about one control-plane node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanNode {
    pub address: String,
    pub hostname: String,
    pub machine_type: MachineType,
    /// Whether the node's Talos API answers: a node that does not is treated as replaced and
    /// must be re-created from its machine-config backup.
    pub reachable: bool,
    pub member_id: Option<String>,
    /// Where the node keeps etcd's data, which decides the volume its reset wipes.
    pub etcd_volume: EtcdDataVolume,
}

/// A step before it is stored: what, where, with which parameters, and the talosctl equivalent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub kind: StepKind,
    pub target: Option<StepTarget>,
    pub params: StepParams,
    pub talosctl: String,
}

fn target(node: &PlanNode) -> StepTarget {
    StepTarget {
        hostname: node.hostname.clone(),
        address: node.address.clone(),
        machine_type: node.machine_type,
        member_id: node.member_id.clone(),
    }
}

/// The whole plan, pre-check first. `bootstrap_node` is an address among `nodes`; the caller
/// checks that it is reachable.
pub fn build_plan(
    nodes: &[PlanNode],
    snapshot: &ChosenSnapshot,
    bootstrap_node: &str,
) -> Vec<PlannedStep> {
    let addresses: Vec<&str> = nodes.iter().map(|n| n.address.as_str()).collect();
    let mut steps = vec![
        untargeted(StepKind::PreCheck, &addresses),
        untargeted(StepKind::ChooseSnapshot, &addresses),
    ];
    // Init nodes first: they refuse to recover etcd until they are control-plane nodes.
    for node in nodes
        .iter()
        .filter(|n| n.reachable && n.machine_type == MachineType::Init)
    {
        steps.push(on(
            node,
            StepKind::StageControlplaneConfig,
            StepParams::default(),
        ));
        steps.push(on(node, StepKind::RebootNode, StepParams::default()));
    }
    for node in nodes {
        if node.reachable {
            let params = StepParams {
                wipe_labels: vec![node.etcd_volume.wipe_label().to_string()],
                etcd_data_volume: Some(node.etcd_volume.clone()),
                ..StepParams::default()
            };
            steps.push(on(node, StepKind::ResetNode, params));
        } else {
            steps.push(on(node, StepKind::RecreateNode, StepParams::default()));
        }
    }
    steps.push(untargeted(StepKind::WaitPreparing, &addresses));
    let snapshot_params = StepParams {
        snapshot_id: Some(snapshot.snapshot_id.clone()),
        snapshot_sha256: Some(snapshot.sha256.clone()),
        skip_hash_check: snapshot.skip_hash_check,
        ..StepParams::default()
    };
    if let Some(node) = nodes.iter().find(|n| n.address == bootstrap_node) {
        steps.push(on(node, StepKind::UploadSnapshot, snapshot_params.clone()));
        steps.push(on(node, StepKind::Bootstrap, snapshot_params.clone()));
        steps.push(on(node, StepKind::WaitHealthy, StepParams::default()));
    }
    steps.push(PlannedStep {
        kind: StepKind::PostCheck,
        target: None,
        talosctl: talosctl_for(StepKind::PostCheck, &addresses, &snapshot_params),
        params: snapshot_params,
    });
    steps
}

fn untargeted(kind: StepKind, addresses: &[&str]) -> PlannedStep {
    PlannedStep {
        kind,
        target: None,
        params: StepParams::default(),
        talosctl: talosctl_for(kind, addresses, &StepParams::default()),
    }
}

fn on(node: &PlanNode, kind: StepKind, params: StepParams) -> PlannedStep {
    PlannedStep {
        kind,
        target: Some(target(node)),
        talosctl: talosctl_for(kind, &[node.address.as_str()], &params),
        params,
    }
}

/// The talosctl command(s) that do by hand what the step does, as the seed procedure has them.
pub fn talosctl_for(kind: StepKind, addresses: &[&str], params: &StepParams) -> String {
    let n = addresses.join(",");
    let file = params
        .snapshot_sha256
        .as_deref()
        .map(|sha| format!("./{}.snapshot", &sha[..sha.len().min(12)]))
        .unwrap_or_else(|| "./db.snapshot".to_string());
    match kind {
        StepKind::PreCheck => {
            format!("talosctl -n {n} etcd members && talosctl -n {n} service etcd")
        }
        StepKind::ChooseSnapshot => "talosctl -n <IP> etcd snapshot db.snapshot  # or: talosctl -n <IP> cp /var/lib/etcd/member/snap/db ."
            .to_string(),
        StepKind::StageControlplaneConfig => {
            format!("talosctl -n {n} edit mc --mode=staged  # set machine.type: controlplane")
        }
        StepKind::RebootNode => format!("talosctl -n {n} reboot"),
        StepKind::ResetNode => {
            let command = format!(
                "talosctl -n {n} reset --graceful=false --reboot --system-labels-to-wipe={}",
                params.wipe_labels.join(",")
            );
            // Whoever runs it by hand needs the same warning as the approver when the label
            // could not be chosen from what the node said.
            match &params.etcd_data_volume {
                Some(volume @ (EtcdDataVolume::Absent | EtcdDataVolume::Unreadable { .. })) => {
                    format!("{command}  # {}", volume.wipe_reason(&n))
                }
                _ => command,
            }
        }
        StepKind::RecreateNode => format!(
            "talosctl apply-config --insecure -n {n} --file <machine-config backup>.yaml"
        ),
        StepKind::WaitPreparing => format!("talosctl -n {n} service etcd  # STATE Preparing"),
        StepKind::UploadSnapshot | StepKind::Bootstrap => {
            let skip = if params.skip_hash_check {
                " --recover-skip-hash-check"
            } else {
                ""
            };
            format!("talosctl -n {n} bootstrap --recover-from={file}{skip}")
        }
        StepKind::WaitHealthy => {
            format!("talosctl -n {n} dmesg -f  # and: talosctl -n {n} service etcd")
        }
        StepKind::PostCheck => {
            format!("talosctl -n {n} etcd members && talosctl -n <IP> etcd snapshot check.snapshot")
        }
    }
}
