//! The pre-checks of the seed procedure ("make sure the etcd cluster can't be recovered"): every
//! control-plane node's reachability, machine type, etcd service state and health, member id,
//! member list and raft index, from one health poll, with the verdict the health page shows.

use talos_dr_shared::recovery::{PreCheckNode, PreCheckReport, precheck_needs_override};
use talos_dr_shared::{ClusterHealth, ServiceHealth};

use super::nodes;

pub fn report(health: &ClusterHealth, at_ms: i64) -> PreCheckReport {
    let nodes: Vec<PreCheckNode> = health
        .nodes
        .iter()
        .map(|n| {
            let mut members_seen = n
                .members
                .as_ref()
                .map(|ms| ms.iter().map(|m| m.id.clone()).collect::<Vec<_>>());
            if let Some(ids) = members_seen.as_mut() {
                ids.sort();
            }
            PreCheckNode {
                address: n.node.clone(),
                hostname: nodes::hostname(health, &n.node),
                reachable: n.reachable,
                machine_type: n.machine_type,
                etcd_state: n.etcd_service.as_ref().map(|s| s.state),
                etcd_health: match n.etcd_service.as_ref().map(|s| s.health) {
                    Some(ServiceHealth::Healthy) => "healthy",
                    Some(ServiceHealth::Unhealthy) => "unhealthy",
                    _ => "unknown",
                }
                .to_string(),
                member_id: nodes::member_id(health, &n.node),
                members_seen,
                raft_index: n.etcd_status.as_ref().map(|s| s.raft_index),
            }
        })
        .collect();
    let lists: Vec<&Vec<String>> = nodes
        .iter()
        .filter_map(|n| n.members_seen.as_ref())
        .collect();
    let member_lists_agree = lists.windows(2).all(|w| w[0] == w[1]);
    let mut findings = health.verdict.reasons.clone();
    if !member_lists_agree {
        findings.insert(
            0,
            "the nodes' etcd member lists disagree (compare `talosctl etcd members` on each)"
                .into(),
        );
    }
    let answering = lists.len();
    findings.push(format!(
        "{answering} of {} node(s) answered a member list",
        nodes.len()
    ));
    if let Some(best) = nodes
        .iter()
        .filter(|n| n.raft_index.is_some())
        .max_by_key(|n| n.raft_index)
    {
        findings.push(format!(
            "highest raft index: {} on {} (the newest data, for a raw copy)",
            best.raft_index.unwrap_or(0),
            best.hostname.as_deref().unwrap_or(&best.address)
        ));
    }
    PreCheckReport {
        at_ms,
        verdict: health.verdict.level,
        summary: health.verdict.summary.clone(),
        next_move: health.verdict.next_move.clone(),
        member_lists_agree,
        nodes,
        findings,
    }
}

/// The pre-check step's outcome in words: `Ok` when a full recovery is the right move.
pub fn outcome(report: &PreCheckReport) -> Result<String, String> {
    if precheck_needs_override(report.verdict) {
        Err(format!(
            "the pre-checks say \"{}\" ({}): {}. Restoring quorum may be the better move; \
             to go on with a full recovery anyway, override with a reason",
            report.verdict.as_str(),
            report.summary,
            report.next_move
        ))
    } else {
        Ok(format!(
            "quorum is lost for good ({}): a full recovery from a snapshot is the way back",
            report.summary
        ))
    }
}
