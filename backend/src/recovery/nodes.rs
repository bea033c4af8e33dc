//! What the latest health poll says about one node: its hostname, etcd member, and the state an
//! approval is given for; and where each node keeps etcd's data, read when the plan is made.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use talos_dr_shared::recovery::{EtcdDataVolume, PlanNode, PreCheckReport, TargetState};
use talos_dr_shared::{ClusterHealth, MachineType, NodeHealth};

use crate::talos::TalosApi;

/// How long one node may take to say where etcd's data is.
const VOLUME_READ_WITHIN: Duration = Duration::from_secs(5);

/// How long the target of an approval or a run may take to say its state.
const TARGET_READ_WITHIN: Duration = Duration::from_secs(5);

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
    etcd_volumes: &BTreeMap<String, EtcdDataVolume>,
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
                etcd_volume: etcd_volumes.get(address).cloned().unwrap_or_else(|| {
                    EtcdDataVolume::Unreadable {
                        reason: "not read: the node did not answer when the plan was made".into(),
                    }
                }),
            }
        })
        .collect()
}

/// The target's state read from the node itself at the moment of an approval or a run, so both
/// compare what the node is now rather than a health poll that may have started seconds before
/// (a poll in flight when etcd died still says Running). Only calls that answer without etcd are
/// made; the member id, which changes only along with the service state, comes from `health`.
/// A call that fails on a node that answered keeps the poll's value; a node that answers nothing
/// is unreachable.
pub async fn fresh_target_state(
    talos: &dyn TalosApi,
    health: &ClusterHealth,
    address: &str,
) -> TargetState {
    let polled = target_state(health, address);
    let (machine_type, service) = tokio::join!(
        tokio::time::timeout(TARGET_READ_WITHIN, talos.machine_type(address)),
        tokio::time::timeout(TARGET_READ_WITHIN, talos.etcd_service(address)),
    );
    let reachable = answered(&machine_type) || answered(&service);
    if !reachable {
        return TargetState {
            reachable: false,
            ..polled
        };
    }
    TargetState {
        reachable,
        machine_type: match machine_type {
            Ok(Ok(t)) => Some(t),
            _ => polled.machine_type,
        },
        etcd_state: match service {
            Ok(Ok(service)) => service.map(|s| s.state),
            _ => polled.etcd_state,
        },
        member_id: polled.member_id,
    }
}

/// Whether the node's Talos API gave any answer, good or bad, within the bound.
fn answered<T>(
    result: &Result<Result<T, crate::talos::TalosError>, tokio::time::error::Elapsed>,
) -> bool {
    match result {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => e.node_answered(),
        Err(_) => false,
    }
}

/// Where each node whose Talos API answers keeps etcd's data, read from all of them at once.
/// A read that fails is kept with its reason, for the plan to say so on the node's reset.
pub async fn etcd_volumes(
    talos: &dyn TalosApi,
    health: &ClusterHealth,
    addresses: &[String],
) -> BTreeMap<String, EtcdDataVolume> {
    let reads = addresses
        .iter()
        .filter(|address| node(health, address).is_some_and(|n| n.reachable))
        .map(|address| async move {
            let volume =
                match tokio::time::timeout(VOLUME_READ_WITHIN, talos.etcd_data_volume(address))
                    .await
                {
                    Ok(Ok(volume)) => volume,
                    Ok(Err(e)) => {
                        tracing::warn!(node = %address, error = %e, "cannot read the ETCD volume");
                        EtcdDataVolume::Unreadable {
                            reason: format!("VolumeStatus ETCD: {e}"),
                        }
                    }
                    Err(_) => EtcdDataVolume::Unreadable {
                        reason: format!(
                            "VolumeStatus ETCD: no answer within {}s",
                            VOLUME_READ_WITHIN.as_secs()
                        ),
                    },
                };
            (address.clone(), volume)
        });
    join_all(reads).await.into_iter().collect()
}
