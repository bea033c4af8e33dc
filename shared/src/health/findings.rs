//! Disagreements between the control-plane nodes' views of etcd, and other structural problems
//! an SRE must see before acting: each one structured (kind, node, member) and in words.

use serde::{Deserialize, Serialize};

use super::{AlarmType, EtcdMember, MachineType, NodeHealth};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Nodes report different member lists.
    SplitMemberLists,
    /// A member some node lists that is not in the cluster's member list.
    UnknownMember,
    /// A node whose local etcd member is not in the cluster's member list.
    ExtraMember,
    /// A member that does not vote yet.
    Learner,
    /// A node whose etcd reports no leader.
    NoLeader,
    /// A node whose etcd follows a different leader than the others.
    LeaderDisagreement,
    /// A member no polled control-plane node matches.
    MemberWithoutMachine,
    /// An etcd alarm (NOSPACE, CORRUPT) is raised.
    Alarm,
    /// A node with machine type `init`, which recovery cannot use.
    InitMachineType,
}

impl FindingKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SplitMemberLists => "split member lists",
            Self::UnknownMember => "unknown member",
            Self::ExtraMember => "extra member",
            Self::Learner => "learner",
            Self::NoLeader => "no leader",
            Self::LeaderDisagreement => "leader disagreement",
            Self::MemberWithoutMachine => "member without a machine",
            Self::Alarm => "alarm",
            Self::InitMachineType => "init machine type",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The node the finding is about, when there is one.
    pub node: Option<String>,
    /// The etcd member ID the finding is about, when there is one.
    pub member: Option<String>,
    pub words: String,
}

impl Finding {
    fn new(kind: FindingKind, node: Option<&str>, member: Option<&str>, words: String) -> Self {
        Self {
            kind,
            node: node.map(str::to_string),
            member: member.map(str::to_string),
            words,
        }
    }
}

/// `cp-1` when the member has a name, else its ID.
pub(super) fn member_name(m: &EtcdMember) -> &str {
    if m.hostname.is_empty() {
        &m.id
    } else {
        &m.hostname
    }
}

pub(super) fn is_zero_id(id: &str) -> bool {
    id.chars().all(|c| c == '0')
}

pub(super) fn alarm_word(alarm: AlarmType) -> &'static str {
    match alarm {
        AlarmType::None => "NONE",
        AlarmType::Nospace => "NOSPACE",
        AlarmType::Corrupt => "CORRUPT",
    }
}

/// What the views disagree on. `lists` are the member lists per node (sorted by ID), `base` the
/// cluster's list (the most common one), `leader` the leader most nodes follow, and `mapped`
/// the nodes each member of `base` was matched to.
pub(super) fn find(
    nodes: &[NodeHealth],
    lists: &[(&str, Vec<EtcdMember>)],
    base: &[EtcdMember],
    leader: Option<&str>,
    mapped: &[(EtcdMember, Option<String>)],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let in_base = |id: &str| base.iter().any(|m| m.id == id);

    if lists.windows(2).any(|w| !same_ids(&w[0].1, &w[1].1)) {
        let views: Vec<String> = lists
            .iter()
            .map(|(node, l)| {
                let mut names: Vec<&str> = l.iter().map(member_name).collect();
                names.sort_unstable();
                format!("{node} sees {} ({})", l.len(), names.join(", "))
            })
            .collect();
        // The finding names the first node that disagrees with the cluster's list.
        let odd = lists
            .iter()
            .find(|(_, l)| !same_ids(l, base))
            .map(|(node, _)| *node);
        out.push(Finding::new(
            FindingKind::SplitMemberLists,
            odd,
            None,
            format!("member lists disagree: {}", views.join("; ")),
        ));
    }

    let mut strays: Vec<(&EtcdMember, Vec<&str>)> = Vec::new();
    for (node, list) in lists {
        for m in list.iter().filter(|m| !in_base(&m.id)) {
            match strays.iter_mut().find(|(s, _)| s.id == m.id) {
                Some((_, by)) => by.push(node),
                None => strays.push((m, vec![node])),
            }
        }
    }
    for (m, by) in strays {
        out.push(Finding::new(
            FindingKind::UnknownMember,
            None,
            Some(&m.id),
            format!(
                "member {} ({}) is listed by {} but not in the cluster's member list",
                member_name(m),
                m.id,
                by.join(", ")
            ),
        ));
    }

    for n in nodes {
        if let Some(s) = &n.etcd_status
            && !base.is_empty()
            && !is_zero_id(&s.member_id)
            && !in_base(&s.member_id)
        {
            out.push(Finding::new(
                FindingKind::ExtraMember,
                Some(&n.node),
                Some(&s.member_id),
                format!(
                    "{} runs etcd member {}, which is not in the cluster's member list",
                    n.node, s.member_id
                ),
            ));
        }
    }

    for m in base.iter().filter(|m| m.is_learner) {
        out.push(Finding::new(
            FindingKind::Learner,
            None,
            Some(&m.id),
            format!(
                "member {} ({}) is a learner: it does not vote until promoted",
                member_name(m),
                m.id
            ),
        ));
    }

    for n in nodes {
        let Some(s) = &n.etcd_status else { continue };
        if is_zero_id(&s.leader) {
            out.push(Finding::new(
                FindingKind::NoLeader,
                Some(&n.node),
                Some(&s.member_id),
                format!("{} sees no leader", n.node),
            ));
        } else if let Some(l) = leader
            && s.leader != l
        {
            out.push(Finding::new(
                FindingKind::LeaderDisagreement,
                Some(&n.node),
                Some(&s.member_id),
                format!(
                    "{} follows leader {}, most nodes follow {l}",
                    n.node, s.leader
                ),
            ));
        }
    }

    for (m, node) in mapped {
        if node.is_none() {
            out.push(Finding::new(
                FindingKind::MemberWithoutMachine,
                None,
                Some(&m.id),
                format!(
                    "member {} ({}) has no machine: no polled control-plane node matches its URLs or name",
                    member_name(m),
                    m.id
                ),
            ));
        }
    }

    let mut alarms: Vec<(&str, AlarmType, &str)> = Vec::new();
    for n in nodes {
        for a in n.alarms.iter().filter(|a| a.alarm != AlarmType::None) {
            if !alarms
                .iter()
                .any(|(id, t, _)| *id == a.member_id && *t == a.alarm)
            {
                alarms.push((&a.member_id, a.alarm, &n.node));
            }
        }
    }
    for (id, alarm, seen_by) in alarms {
        let owner = mapped.iter().find(|(m, _)| m.id == id);
        // The fix (defrag, disarm) targets the member's own node; else whoever reported it.
        let node = owner
            .and_then(|(_, node)| node.as_deref())
            .unwrap_or(seen_by);
        let on = owner
            .map(|(m, node)| match node {
                Some(node) => format!("{} ({node})", member_name(m)),
                None => member_name(m).to_string(),
            })
            .unwrap_or_else(|| id.to_string());
        let effect = match alarm {
            AlarmType::Nospace => {
                "etcd accepts only reads and deletes until space is freed and the alarm disarmed"
            }
            _ => "the member's data disagrees with the others; do not trust it",
        };
        out.push(Finding::new(
            FindingKind::Alarm,
            Some(node),
            Some(id),
            format!(
                "{} alarm on member {id} on {on}: {effect}",
                alarm_word(alarm)
            ),
        ));
    }

    for n in nodes
        .iter()
        .filter(|n| n.machine_type == Some(MachineType::Init))
    {
        out.push(Finding::new(
            FindingKind::InitMachineType,
            Some(&n.node),
            None,
            format!(
                "{} has machine type init, which etcd recovery cannot use",
                n.node
            ),
        ));
    }
    out
}

fn same_ids(a: &[EtcdMember], b: &[EtcdMember]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.id == y.id)
}
