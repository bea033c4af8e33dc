//! The verdict: merge the per-node views into one member list, do the quorum arithmetic, and
//! say what to do next.

use super::findings::{self, Finding, FindingKind, is_zero_id, member_name};
use super::{
    EtcdMember, HealthVerdict, MemberHealth, MemberState, NodeHealth, ServiceHealth, ServiceState,
    VerdictLevel,
};
use crate::quorum::Quorum;

pub(super) fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = hostport.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
}

fn member_node<'a>(member: &EtcdMember, nodes: &'a [NodeHealth]) -> Option<&'a NodeHealth> {
    let hosts: Vec<&str> = member
        .client_urls
        .iter()
        .chain(member.peer_urls.iter())
        .map(|u| url_host(u))
        .collect();
    nodes
        .iter()
        .find(|n| hosts.contains(&n.node.as_str()))
        .or_else(|| {
            nodes
                .iter()
                .find(|n| !member.hostname.is_empty() && n.node == member.hostname)
        })
        .or_else(|| {
            nodes.iter().find(|n| {
                n.etcd_status
                    .as_ref()
                    .is_some_and(|s| s.member_id == member.id)
            })
        })
}

/// How one member is doing, and whether it can still vote.
struct Judgement {
    state: MemberState,
    reason: Option<String>,
    /// etcd runs and answers; failing the health check only for want of a leader.
    up: bool,
    /// Down, but its node answers and its data should still be there: starting etcd brings it back.
    restorable: bool,
}

fn judge_member(
    member: &EtcdMember,
    node: Option<&NodeHealth>,
    cluster: &[EtcdMember],
) -> Judgement {
    let verdict = |state, reason: String, up, restorable| Judgement {
        state,
        reason: Some(reason),
        up,
        restorable,
    };
    let Some(node) = node else {
        return verdict(
            MemberState::Unknown,
            "no polled node matches this member".into(),
            false,
            false,
        );
    };
    if !node.reachable {
        return verdict(
            MemberState::Unknown,
            format!("Talos API on {} is unreachable", node.node),
            false,
            false,
        );
    }
    let Some(service) = &node.etcd_service else {
        return verdict(
            MemberState::Unknown,
            format!("etcd service state on {} is unknown", node.node),
            false,
            false,
        );
    };
    if service.state != ServiceState::Running {
        // Preparing means the pre stage waits to join or to be bootstrapped: its data is gone.
        let restorable = !matches!(
            service.state,
            ServiceState::Preparing | ServiceState::Skipped | ServiceState::Unknown
        );
        let why = if service.state == ServiceState::Preparing {
            format!(
                "etcd service on {} is Preparing (its data directory is empty)",
                node.node
            )
        } else {
            format!(
                "etcd service on {} is {}",
                node.node,
                service.state.as_str()
            )
        };
        return verdict(MemberState::Unhealthy, why, false, restorable);
    }
    let Some(status) = &node.etcd_status else {
        let why = node
            .failures
            .iter()
            .find(|f| f.call == "EtcdStatus")
            .map_or_else(|| "no answer".to_string(), |f| f.message.clone());
        return verdict(
            MemberState::Unhealthy,
            format!("etcd on {} does not answer status: {why}", node.node),
            false,
            true,
        );
    };
    if status.member_id != member.id {
        return verdict(
            MemberState::Unhealthy,
            format!(
                "etcd on {} runs member {}, not this one",
                node.node, status.member_id
            ),
            false,
            false,
        );
    }
    // Same member ID, different cluster: a node bootstrapped again gets the ID back (etcd derives
    // it from the peer URL and cluster token), so only its member list gives it away.
    if let Some(seen) = &node.members
        && (seen.len() != cluster.len()
            || seen.iter().any(|m| !cluster.iter().any(|c| c.id == m.id)))
    {
        return verdict(
            MemberState::Unhealthy,
            format!(
                "etcd on {} sees {} member(s), the cluster has {}: it runs apart from the cluster",
                node.node,
                seen.len(),
                cluster.len()
            ),
            false,
            false,
        );
    }
    if service.health == ServiceHealth::Unhealthy {
        let msg = if service.health_message.is_empty() {
            "health check failing".to_string()
        } else {
            service.health_message.clone()
        };
        let leaderless = is_zero_id(&status.leader);
        let reason = if leaderless {
            format!("etcd on {} runs but sees no leader: {msg}", node.node)
        } else {
            format!("etcd on {}: {msg}", node.node)
        };
        return verdict(MemberState::Unhealthy, reason, leaderless, false);
    }
    Judgement {
        state: MemberState::Healthy,
        reason: None,
        up: true,
        restorable: false,
    }
}

/// The most common member list among nodes that answered is the cluster's view.
fn cluster_list<'a>(lists: &'a [(&str, Vec<EtcdMember>)]) -> Option<&'a Vec<EtcdMember>> {
    let ids = |l: &[EtcdMember]| l.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
    let mut best = None;
    let mut best_votes = 0;
    for (_, list) in lists {
        let votes = lists
            .iter()
            .filter(|(_, other)| ids(other) == ids(list))
            .count();
        if votes > best_votes {
            best_votes = votes;
            best = Some(list);
        }
    }
    best
}

/// The leader most nodes follow.
fn common_leader(nodes: &[NodeHealth]) -> Option<String> {
    let leaders: Vec<&str> = nodes
        .iter()
        .filter_map(|n| n.etcd_status.as_ref())
        .map(|s| s.leader.as_str())
        .filter(|l| !l.is_empty() && !is_zero_id(l))
        .collect();
    leaders
        .iter()
        .max_by_key(|l| leaders.iter().filter(|o| o == l).count())
        .map(|l| l.to_string())
}

fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Merges the per-node views into one member list and a verdict.
///
/// `remembered` is the last member list the poller saw while quorum held: once quorum is lost
/// Talos can no longer list members (the call needs a leader), but the SRE still needs to see
/// which members are gone.
pub fn assess(
    nodes: &[NodeHealth],
    remembered: &[EtcdMember],
) -> (Vec<MemberHealth>, HealthVerdict) {
    let mut reasons = Vec::new();
    let lists: Vec<(&str, Vec<EtcdMember>)> = nodes
        .iter()
        .filter_map(|n| {
            n.members.as_ref().map(|m| {
                let mut m = m.clone();
                m.sort_by(|a, b| a.id.cmp(&b.id));
                (n.node.as_str(), m)
            })
        })
        .collect();
    let base: Vec<EtcdMember> = match cluster_list(&lists) {
        Some(list) => list.clone(),
        None => {
            if !remembered.is_empty() {
                reasons.push("no node could list members; showing the last list seen".into());
            }
            let mut r = remembered.to_vec();
            r.sort_by(|a, b| a.id.cmp(&b.id));
            r
        }
    };
    let leader = common_leader(nodes);

    let judged: Vec<(MemberHealth, Judgement)> = base
        .iter()
        .map(|member| {
            let node = member_node(member, nodes);
            let judgement = judge_member(member, node, &base);
            let listed_by = lists
                .iter()
                .filter(|(_, l)| l.iter().any(|m| m.id == member.id))
                .map(|(n, _)| n.to_string())
                .collect();
            let health = MemberHealth {
                is_leader: leader.as_deref() == Some(member.id.as_str()),
                node: node.map(|n| n.node.clone()),
                state: judgement.state,
                reason: judgement.reason.clone(),
                listed_by,
                member: member.clone(),
            };
            (health, judgement)
        })
        .collect();
    let mapped: Vec<(EtcdMember, Option<String>)> = judged
        .iter()
        .map(|(m, _)| (m.member.clone(), m.node.clone()))
        .collect();
    let findings = findings::find(nodes, &lists, &base, leader.as_deref(), &mapped);

    let voters: Vec<&(MemberHealth, Judgement)> = judged
        .iter()
        .filter(|(m, _)| !m.member.is_learner)
        .collect();
    let up = voters.iter().filter(|(_, j)| j.up).count() as u32;
    let unknown = voters
        .iter()
        .filter(|(m, _)| m.state == MemberState::Unknown)
        .count() as u32;
    let mut restorable: Vec<MemberHealth> = voters
        .iter()
        .filter(|(_, j)| j.restorable)
        .map(|(m, _)| m.clone())
        .collect();
    restorable.sort_by(|a, b| a.node.cmp(&b.node));
    let learners = (judged.len() - voters.len()) as u32;
    let quorum = Quorum::new(voters.len() as u32, up);

    let mut members: Vec<MemberHealth> = judged.into_iter().map(|(m, _)| m).collect();
    members.sort_by(|a, b| a.node.cmp(&b.node).then(a.member.id.cmp(&b.member.id)));
    for m in &members {
        if let Some(r) = &m.reason {
            reasons.push(format!(
                "member {} ({}): {r}",
                m.member.hostname, m.member.id
            ));
        }
    }
    reasons.extend(findings.iter().map(|f| f.words.clone()));

    let needed = quorum.needed();
    let back = restorable.len() as u32;
    let level = if quorum.voters == 0 {
        VerdictLevel::Unknown
    } else if quorum.holds() {
        if reasons.is_empty() {
            VerdictLevel::Healthy
        } else {
            VerdictLevel::Degraded
        }
    } else if up + unknown >= needed {
        VerdictLevel::Unknown
    } else if up + back >= needed {
        VerdictLevel::QuorumRestorable
    } else if up + back + unknown >= needed {
        VerdictLevel::Unknown
    } else {
        VerdictLevel::FullRecoveryNeeded
    };

    let members_words = if learners > 0 {
        format!(
            "{} (plus {})",
            plural(quorum.voters, "member", "members"),
            plural(learners, "learner", "learners")
        )
    } else {
        plural(quorum.voters, "member", "members")
    };
    let asked = if unknown > 0 {
        format!(", {unknown} cannot be asked")
    } else {
        String::new()
    };
    let quorum_words = match level {
        _ if quorum.voters == 0 => "no etcd members seen on any control-plane node".to_string(),
        _ if quorum.holds() => format!(
            "{members_words}, {up} healthy{asked}, quorum needs {needed}: holds, {}",
            match quorum.margin() {
                0 => "one more failure loses it".to_string(),
                1 => "survives one more failure".to_string(),
                n => format!("survives {n} more failures"),
            }
        ),
        VerdictLevel::Unknown => {
            format!("{members_words}, {up} healthy{asked}, quorum needs {needed}: cannot tell")
        }
        _ => format!("{members_words}, {up} healthy{asked}, quorum needs {needed}: lost"),
    };

    let unreachable: Vec<String> = members
        .iter()
        .filter(|m| m.state == MemberState::Unknown)
        .map(|m| {
            m.node
                .clone()
                .unwrap_or_else(|| member_name(&m.member).to_string())
        })
        .collect();
    let summary = match level {
        VerdictLevel::Healthy => format!("healthy: {quorum_words}"),
        VerdictLevel::Degraded => format!("degraded: {quorum_words}"),
        VerdictLevel::QuorumRestorable => format!(
            "quorum restorable: {quorum_words}; etcd accepts no writes, but {} still hold{} their data",
            plural(back, "member", "members"),
            if back == 1 { "s" } else { "" }
        ),
        VerdictLevel::FullRecoveryNeeded => format!(
            "full recovery needed: {quorum_words}; only {} can come back with its data",
            plural(up + back, "member", "members")
        ),
        VerdictLevel::Unknown => format!("unknown: {quorum_words}"),
    };

    let next_move = match level {
        VerdictLevel::Healthy => "nothing to fix; keep taking etcd snapshots".to_string(),
        VerdictLevel::Degraded => degraded_move(&members, &findings),
        VerdictLevel::QuorumRestorable => {
            let names: Vec<String> = restorable
                .iter()
                .map(|m| {
                    format!(
                        "{} ({})",
                        member_name(&m.member),
                        m.node.as_deref().unwrap_or("?")
                    )
                })
                .collect();
            format!(
                "bring back {} of: {}; start etcd there or reboot the node, its data rejoins the quorum (no snapshot restore needed)",
                needed - up,
                names.join(", ")
            )
        }
        VerdictLevel::FullRecoveryNeeded => format!(
            "restore from the latest etcd snapshot: quorum needs {needed}, only {} can come back; \
             reset EPHEMERAL on every control-plane node, then bootstrap one node from the snapshot",
            up + back
        ),
        VerdictLevel::Unknown if quorum.voters == 0 => {
            "reach the control-plane nodes' Talos API and etcd before deciding".to_string()
        }
        VerdictLevel::Unknown => format!(
            "reach {} before deciding: their members may still vote",
            unreachable.join(", ")
        ),
    };

    (
        members,
        HealthVerdict {
            level,
            quorum,
            unknown,
            leader,
            summary,
            quorum_words,
            next_move,
            reasons,
            findings,
        },
    )
}

fn degraded_move(members: &[MemberHealth], findings: &[Finding]) -> String {
    if let Some(f) = findings.iter().find(|f| f.kind == FindingKind::Alarm) {
        let node = f.node.as_deref().unwrap_or("the member's node");
        return format!(
            "quorum holds: fix the alarm: free space on member {} (talosctl -n {node} etcd defrag), then talosctl -n {node} etcd alarm disarm",
            f.member.as_deref().unwrap_or("?")
        );
    }
    if let Some(f) = findings.iter().find(|f| {
        matches!(
            f.kind,
            FindingKind::SplitMemberLists | FindingKind::ExtraMember | FindingKind::UnknownMember
        )
    }) {
        let node = f.node.as_deref().unwrap_or("the node whose list differs");
        return format!(
            "quorum holds: fix the split: {node} runs etcd apart from the cluster; remove its stale member, \
             reset {node} (wipe EPHEMERAL) and let it rejoin as a new member"
        );
    }
    if let Some(m) = members
        .iter()
        .find(|m| m.state != MemberState::Healthy && !m.member.is_learner)
    {
        return format!(
            "quorum holds: fix the broken member {} ({}): {}",
            member_name(&m.member),
            m.node.as_deref().unwrap_or("no machine"),
            m.reason.as_deref().unwrap_or("not healthy")
        );
    }
    match findings.first() {
        Some(f) => format!("quorum holds: {}", f.words),
        None => "quorum holds: see the reasons below".to_string(),
    }
}
