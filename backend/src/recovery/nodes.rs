//! What the latest health poll says about one node: its hostname, etcd member, and the state an
//! approval is given for.

use talos_dr_shared::recovery::{PlanNode, PreCheckReport, TargetState};
use talos_dr_shared::{ClusterHealth, MachineType, NodeHealth};

pub fn node<'a>(health: &'a ClusterHealth, address: &str) -> Option<&'a NodeHealth> {
    health.nodes.iter().find(|n| n.node == address)
}

/// The node's hostname as etcd knows it (its member's name), when a member maps to the node.
pub fn hostname(health: &ClusterHealth, address: &str) -> Option<String> {
    health
        .members
        .iter()
        .find(|m| m.node.as_deref() == Some(address) && !m.member.hostname.is_empty())
        .map(|m| m.member.hostname.clone())
}

/// The node's etcd member id: from its own status, else from the members that map to it.
pub fn member_id(health: &ClusterHealth, address: &str) -> Option<String> {
    node(health, address)
        .and_then(|n| n.etcd_status.as_ref())
        .map(|s| s.member_id.clone())
        .or_else(|| {
            health
                .members
                .iter()
                .find(|m| m.node.as_deref() == Some(address))
                .map(|m| m.member.id.clone())
        })
}

/// The state approvals are given for: reachability, machine type, etcd state and member.
pub fn target_state(health: &ClusterHealth, address: &str) -> TargetState {
    match node(health, address) {
        Some(n) => TargetState {
            reachable: n.reachable,
            machine_type: n.machine_type,
            etcd_state: n.etcd_service.as_ref().map(|s| s.state),
            member_id: member_id(health, address),
        },
        None => TargetState {
            reachable: false,
            machine_type: None,
            etcd_state: None,
            member_id: None,
        },
    }
}

/// The plan's view of every node: live health first, the pre-check's names for what the live
/// view no longer knows (a member whose etcd is gone no longer maps to its node).
pub fn plan_nodes(
    health: &ClusterHealth,
    precheck: Option<&PreCheckReport>,
    addresses: &[String],
) -> Vec<PlanNode> {
    addresses
        .iter()
        .map(|address| {
            let seen = precheck.and_then(|p| p.nodes.iter().find(|n| &n.address == address));
            let live = node(health, address);
            PlanNode {
                address: address.clone(),
                hostname: hostname(health, address)
                    .or_else(|| seen.and_then(|s| s.hostname.clone()))
                    .unwrap_or_else(|| address.clone()),
                machine_type: live
                    .and_then(|n| n.machine_type)
                    .or_else(|| seen.and_then(|s| s.machine_type))
                    .unwrap_or(MachineType::Unknown),
                reachable: live.is_some_and(|n| n.reachable),
                member_id: member_id(health, address)
                    .or_else(|| seen.and_then(|s| s.member_id.clone())),
                // The Talos API the console uses does not tell volume layouts apart; EPHEMERAL
                // holds etcd's data on every default install.
                has_etcd_volume: false,
            }
        })
        .collect()
}
