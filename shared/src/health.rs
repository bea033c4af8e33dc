//! The cluster health model: what the poller saw on each control-plane node, and the verdict an
//! SRE reads first (healthy, degraded, quorum lost). The verdict is computed here, once, so the
//! server, the browser and the tests can never disagree about it.

use serde::{Deserialize, Serialize};

use crate::quorum::Quorum;

/// Formats an etcd member ID the way talosctl and etcdctl print it: 16 lowercase hex digits.
pub fn format_member_id(id: u64) -> String {
    format!("{id:016x}")
}

/// Talos machine type, from the COSI `MachineType` resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MachineType {
    Unknown,
    Init,
    Controlplane,
    Worker,
}

/// Talos service states, in Talos' own order and spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceState {
    Initialized,
    Preparing,
    Waiting,
    Running,
    Stopping,
    Finished,
    Failed,
    Skipped,
    Starting,
    /// A state string this console does not know (a newer Talos).
    Unknown,
}

impl ServiceState {
    pub fn parse(s: &str) -> Self {
        match s {
            "Initialized" => Self::Initialized,
            "Preparing" => Self::Preparing,
            "Waiting" => Self::Waiting,
            "Running" => Self::Running,
            "Stopping" => Self::Stopping,
            "Finished" => Self::Finished,
            "Failed" => Self::Failed,
            "Skipped" => Self::Skipped,
            "Starting" => Self::Starting,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Initialized => "Initialized",
            Self::Preparing => "Preparing",
            Self::Waiting => "Waiting",
            Self::Running => "Running",
            Self::Stopping => "Stopping",
            Self::Finished => "Finished",
            Self::Failed => "Failed",
            Self::Skipped => "Skipped",
            Self::Starting => "Starting",
            Self::Unknown => "Unknown",
        }
    }
}

/// The result of Talos' etcd health check (a quorum read through the local member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceHealth {
    /// No check has run yet (talosctl prints `?`).
    Unknown,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEvent {
    pub state: ServiceState,
    pub message: String,
    /// Unix time in milliseconds.
    pub at_ms: i64,
}

/// The `etcd` entry of Talos' ServiceList on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdService {
    pub state: ServiceState,
    pub health: ServiceHealth,
    pub health_message: String,
    /// Oldest first, as Talos sends them.
    pub events: Vec<ServiceEvent>,
}

/// One etcd member as a node's local member list reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdMember {
    /// 16 hex digits.
    pub id: String,
    pub hostname: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

/// `EtcdStatus` of the local member on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdMemberStatus {
    pub member_id: String,
    pub leader: String,
    pub protocol_version: String,
    pub storage_version: String,
    pub db_size: i64,
    pub db_size_in_use: i64,
    pub raft_index: u64,
    pub raft_term: u64,
    pub raft_applied_index: u64,
    pub is_learner: bool,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AlarmType {
    None,
    Nospace,
    Corrupt,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdAlarm {
    pub member_id: String,
    pub alarm: AlarmType,
}

/// A Talos call that failed while polling a node, worded for the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallFailure {
    /// The Talos API method, e.g. `EtcdStatus`.
    pub call: String,
    pub message: String,
}

/// Everything one poll learned about one control-plane node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeHealth {
    /// The node as the Talos API targets it (an IP or name, no port).
    pub node: String,
    /// Whether the node's Talos API answered at all during this poll.
    pub reachable: bool,
    pub talos_version: Option<String>,
    pub machine_type: Option<MachineType>,
    pub etcd_service: Option<EtcdService>,
    /// The member list as this node's local etcd member sees it.
    pub members: Option<Vec<EtcdMember>>,
    pub etcd_status: Option<EtcdMemberStatus>,
    pub alarms: Vec<EtcdAlarm>,
    pub failures: Vec<CallFailure>,
    /// Unix ms of the poll that produced this entry.
    pub polled_at_ms: i64,
    /// Round trip of the poll for this node, in milliseconds.
    pub latency_ms: u64,
}

/// What the console concludes about one etcd member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// etcd runs on the member's node, answers status and passes the quorum-read check.
    Healthy,
    /// The member's node answers, but its etcd is stopped, failing or not answering.
    Unhealthy,
    /// The member's node could not be asked (Talos API unreachable, or no node maps to it).
    Unknown,
}

impl MemberState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Unknown => "unknown",
        }
    }
}

/// One etcd member in the merged view across nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberHealth {
    pub member: EtcdMember,
    /// The polled node this member runs on, when one matches its URLs or hostname.
    pub node: Option<String>,
    pub state: MemberState,
    pub is_leader: bool,
    /// Why the member is not healthy, in words.
    pub reason: Option<String>,
    /// The nodes whose member list includes this member.
    pub listed_by: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictLevel {
    /// Quorum holds, every member healthy, lists agree, no alarms.
    Healthy,
    /// Quorum holds, but at least one thing is wrong.
    Degraded,
    /// Fewer healthy voters than a majority: etcd accepts no writes.
    QuorumLost,
    /// Too many nodes unreachable to tell.
    Unknown,
}

impl VerdictLevel {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::QuorumLost => "quorum lost",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthVerdict {
    pub level: VerdictLevel,
    pub quorum: Quorum,
    /// Members whose state is unknown; they may or may not count towards quorum.
    pub unknown: u32,
    pub leader: Option<String>,
    /// One line for the top of the page.
    pub summary: String,
    /// Every finding behind the verdict, most important first.
    pub reasons: Vec<String>,
}

/// The cluster as of one poll: pushed to browsers as a whole on every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterHealth {
    pub cluster: String,
    pub observed_at_ms: i64,
    pub nodes: Vec<NodeHealth>,
    pub members: Vec<MemberHealth>,
    pub verdict: HealthVerdict,
}

/// Clusters the console watches, for the cluster picker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSummary {
    pub name: String,
    pub control_plane_nodes: Vec<String>,
}

fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = hostport.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
}

fn member_node<'a>(member: &EtcdMember, nodes: &'a [NodeHealth]) -> Option<&'a NodeHealth> {
    let hosts: Vec<&str> =
        member.client_urls.iter().chain(member.peer_urls.iter()).map(|u| url_host(u)).collect();
    nodes
        .iter()
        .find(|n| hosts.contains(&n.node.as_str()))
        .or_else(|| nodes.iter().find(|n| !member.hostname.is_empty() && n.node == member.hostname))
        .or_else(|| {
            nodes.iter().find(|n| {
                n.etcd_status.as_ref().is_some_and(|s| s.member_id == member.id)
            })
        })
}

/// Judges one member from what its node reported.
fn judge_member(node: Option<&NodeHealth>) -> (MemberState, Option<String>) {
    let Some(node) = node else {
        return (MemberState::Unknown, Some("no polled node matches this member".into()));
    };
    if !node.reachable {
        return (MemberState::Unknown, Some(format!("Talos API on {} is unreachable", node.node)));
    }
    let Some(service) = &node.etcd_service else {
        return (MemberState::Unknown, Some(format!("etcd service state on {} is unknown", node.node)));
    };
    if service.state != ServiceState::Running {
        return (
            MemberState::Unhealthy,
            Some(format!("etcd service on {} is {}", node.node, service.state.as_str())),
        );
    }
    if node.etcd_status.is_none() {
        let why = node
            .failures
            .iter()
            .find(|f| f.call == "EtcdStatus")
            .map_or_else(|| "no answer".to_string(), |f| f.message.clone());
        return (MemberState::Unhealthy, Some(format!("etcd on {} does not answer status: {why}", node.node)));
    }
    if service.health == ServiceHealth::Unhealthy {
        let msg = if service.health_message.is_empty() {
            "health check failing".to_string()
        } else {
            service.health_message.clone()
        };
        return (MemberState::Unhealthy, Some(format!("etcd on {}: {msg}", node.node)));
    }
    (MemberState::Healthy, None)
}

/// Merges the per-node views into one member list and a verdict.
///
/// `remembered` is the last member list the poller saw while quorum held: once quorum is lost
/// Talos can no longer list members (the call needs a leader), but the SRE still needs to see
/// which members are gone.
pub fn assess(nodes: &[NodeHealth], remembered: &[EtcdMember]) -> (Vec<MemberHealth>, HealthVerdict) {
    let mut reasons = Vec::new();

    // The most common member list among nodes that answered is the cluster's view.
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
    let mut best: Option<&Vec<EtcdMember>> = None;
    let mut best_votes = 0;
    for (_, list) in &lists {
        let votes = lists.iter().filter(|(_, other)| ids(other) == ids(list)).count();
        if votes > best_votes {
            best_votes = votes;
            best = Some(list);
        }
    }
    if lists.iter().any(|(_, l)| Some(ids(l)) != best.map(|b| ids(b))) {
        let views: Vec<String> = lists
            .iter()
            .map(|(node, l)| format!("{node} sees {} member(s)", l.len()))
            .collect();
        reasons.push(format!("member lists disagree: {}", views.join(", ")));
    }
    let base: Vec<EtcdMember> = match best {
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

    let leaders: Vec<&str> = nodes
        .iter()
        .filter_map(|n| n.etcd_status.as_ref())
        .map(|s| s.leader.as_str())
        .filter(|l| !l.is_empty() && l.chars().any(|c| c != '0'))
        .collect();
    let leader = leaders.first().map(|l| l.to_string());
    if leaders.iter().any(|l| Some(*l) != leader.as_deref()) {
        reasons.push("members disagree on the leader".into());
    }

    let mut members: Vec<MemberHealth> = base
        .into_iter()
        .map(|member| {
            let node = member_node(&member, nodes);
            let (state, reason) = judge_member(node);
            let listed_by = lists
                .iter()
                .filter(|(_, l)| l.iter().any(|m| m.id == member.id))
                .map(|(n, _)| n.to_string())
                .collect();
            MemberHealth {
                is_leader: leader.as_deref() == Some(member.id.as_str()),
                node: node.map(|n| n.node.clone()),
                state,
                reason,
                listed_by,
                member,
            }
        })
        .collect();
    members.sort_by(|a, b| a.node.cmp(&b.node).then(a.member.id.cmp(&b.member.id)));

    let voters: Vec<&MemberHealth> = members.iter().filter(|m| !m.member.is_learner).collect();
    let healthy = voters.iter().filter(|m| m.state == MemberState::Healthy).count() as u32;
    let unknown = voters.iter().filter(|m| m.state == MemberState::Unknown).count() as u32;
    let quorum = Quorum::new(voters.len() as u32, healthy);

    for m in &members {
        if let Some(r) = &m.reason {
            reasons.push(format!("member {} ({}): {r}", m.member.hostname, m.member.id));
        }
    }
    for n in nodes {
        for a in n.alarms.iter().filter(|a| a.alarm != AlarmType::None) {
            reasons.push(format!("alarm {:?} raised on member {} (seen by {})", a.alarm, a.member_id, n.node)
                .replace("Nospace", "NOSPACE")
                .replace("Corrupt", "CORRUPT"));
        }
        if let Some(t) = n.machine_type
            && t == MachineType::Init
        {
            reasons.push(format!("{} has machine type init, which etcd recovery cannot use", n.node));
        }
    }
    if leader.is_none() && quorum.voters > 0 {
        reasons.push("no member reports a leader".into());
    }

    let level = if quorum.voters == 0 {
        VerdictLevel::Unknown
    } else if quorum.holds() {
        if reasons.is_empty() { VerdictLevel::Healthy } else { VerdictLevel::Degraded }
    } else if healthy + unknown >= quorum.needed() {
        VerdictLevel::Unknown
    } else {
        VerdictLevel::QuorumLost
    };

    let summary = match level {
        VerdictLevel::Healthy => format!(
            "healthy: {}/{} members healthy, quorum holds (tolerates {} more failure{})",
            healthy,
            quorum.voters,
            quorum.margin(),
            if quorum.margin() == 1 { "" } else { "s" }
        ),
        VerdictLevel::Degraded => format!(
            "degraded: {}/{} members healthy, quorum holds; {}",
            healthy,
            quorum.voters,
            match quorum.margin() {
                0 => "one more failure loses it".to_string(),
                1 => "it survives one more failure".to_string(),
                n => format!("it survives {n} more failures"),
            }
        ),
        VerdictLevel::QuorumLost => format!(
            "quorum lost: {}/{} members healthy, {} needed; etcd accepts no writes",
            healthy,
            quorum.voters,
            quorum.needed()
        ),
        VerdictLevel::Unknown if quorum.voters == 0 => {
            "unknown: no etcd members seen on any control-plane node".to_string()
        }
        VerdictLevel::Unknown => format!(
            "unknown: {healthy}/{} members healthy and {unknown} cannot be asked",
            quorum.voters
        ),
    };

    (members, HealthVerdict { level, quorum, unknown, leader, summary, reasons })
}

fn ids(list: &[EtcdMember]) -> Vec<&str> {
    list.iter().map(|m| m.id.as_str()).collect()
}

impl ClusterHealth {
    pub fn build(cluster: String, observed_at_ms: i64, nodes: Vec<NodeHealth>, remembered: &[EtcdMember]) -> Self {
        let (members, verdict) = assess(&nodes, remembered);
        Self { cluster, observed_at_ms, nodes, members, verdict }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(n: u8) -> EtcdMember {
        EtcdMember {
            id: format_member_id(0xa0 + u64::from(n)),
            hostname: format!("cp-{n}"),
            peer_urls: vec![format!("http://127.0.0.{n}:2380")],
            client_urls: vec![format!("http://127.0.0.{n}:2379")],
            is_learner: false,
        }
    }

    fn healthy_node(n: u8, members: &[EtcdMember]) -> NodeHealth {
        NodeHealth {
            node: format!("127.0.0.{n}"),
            reachable: true,
            talos_version: Some("v1.11.0".into()),
            machine_type: Some(MachineType::Controlplane),
            etcd_service: Some(EtcdService {
                state: ServiceState::Running,
                health: ServiceHealth::Healthy,
                health_message: String::new(),
                events: vec![],
            }),
            members: Some(members.to_vec()),
            etcd_status: Some(EtcdMemberStatus {
                member_id: format_member_id(0xa0 + u64::from(n)),
                leader: format_member_id(0xa2),
                protocol_version: "3.4.0".into(),
                storage_version: "3.4.0".into(),
                db_size: 1,
                db_size_in_use: 1,
                raft_index: 1,
                raft_term: 1,
                raft_applied_index: 1,
                is_learner: false,
                errors: vec![],
            }),
            alarms: vec![],
            failures: vec![],
            polled_at_ms: 0,
            latency_ms: 1,
        }
    }

    fn cluster() -> (Vec<EtcdMember>, Vec<NodeHealth>) {
        let members: Vec<_> = (2..=4).map(member).collect();
        let nodes = (2..=4).map(|n| healthy_node(n, &members)).collect();
        (members, nodes)
    }

    #[test]
    fn all_healthy() {
        let (_, nodes) = cluster();
        let (members, v) = assess(&nodes, &[]);
        assert_eq!(v.level, VerdictLevel::Healthy, "{v:?}");
        assert_eq!(members.len(), 3);
        assert!(members.iter().all(|m| m.state == MemberState::Healthy));
        assert_eq!(members.iter().filter(|m| m.is_leader).count(), 1);
        assert_eq!(members[0].node.as_deref(), Some("127.0.0.2"));
        assert!(v.summary.starts_with("healthy: 3/3"), "{}", v.summary);
    }

    #[test]
    fn one_etcd_killed_is_degraded() {
        let (_, mut nodes) = cluster();
        nodes[1].etcd_status = None;
        nodes[1].members = None;
        nodes[1].failures.push(CallFailure { call: "EtcdStatus".into(), message: "connection refused".into() });
        let (members, v) = assess(&nodes, &[]);
        assert_eq!(v.level, VerdictLevel::Degraded);
        assert_eq!(members[1].state, MemberState::Unhealthy);
        assert!(members[1].reason.as_deref().unwrap_or("").contains("connection refused"));
        assert_eq!(v.quorum.healthy, 2);
    }

    #[test]
    fn two_killed_is_quorum_lost_even_without_member_lists() {
        let (remembered, mut nodes) = cluster();
        for n in &mut nodes {
            n.members = None;
        }
        for n in &mut nodes[1..] {
            n.etcd_status = None;
            if let Some(s) = &mut n.etcd_service {
                s.state = ServiceState::Failed;
            }
        }
        nodes[0].etcd_service.as_mut().map(|s| s.health = ServiceHealth::Unhealthy);
        let (members, v) = assess(&nodes, &remembered);
        assert_eq!(v.level, VerdictLevel::QuorumLost, "{v:?}");
        assert_eq!(members.len(), 3);
        assert!(v.summary.contains("quorum lost"));
    }

    #[test]
    fn unreachable_nodes_make_it_unknown_not_lost() {
        let (remembered, mut nodes) = cluster();
        for n in &mut nodes[1..] {
            *n = NodeHealth { reachable: false, members: None, etcd_status: None, etcd_service: None, ..n.clone() };
        }
        nodes[0].members = None;
        let (_, v) = assess(&nodes, &remembered);
        assert_eq!(v.level, VerdictLevel::Unknown);
        assert_eq!(v.unknown, 2);
    }

    #[test]
    fn disagreeing_lists_and_alarms_degrade() {
        let (members, mut nodes) = cluster();
        nodes[2].members = Some(members[..2].to_vec());
        nodes[0].alarms.push(EtcdAlarm { member_id: members[0].id.clone(), alarm: AlarmType::Nospace });
        let (_, v) = assess(&nodes, &[]);
        assert_eq!(v.level, VerdictLevel::Degraded);
        assert!(v.reasons.iter().any(|r| r.contains("disagree")), "{:?}", v.reasons);
        assert!(v.reasons.iter().any(|r| r.contains("NOSPACE")), "{:?}", v.reasons);
    }

    #[test]
    fn learners_do_not_vote() {
        let (mut members, _) = cluster();
        members[2].is_learner = true;
        let nodes: Vec<_> = (2..=4).map(|n| healthy_node(n, &members)).collect();
        let (_, v) = assess(&nodes, &[]);
        assert_eq!(v.quorum.voters, 2);
    }

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("https://127.0.0.2:2380"), "127.0.0.2");
        assert_eq!(url_host("http://[::1]:2379"), "::1");
        assert_eq!(url_host("cp-1"), "cp-1");
    }

    #[test]
    fn health_round_trips_as_json() {
        let (_, nodes) = cluster();
        let h = ClusterHealth::build("prod".into(), 5, nodes, &[]);
        let json = serde_json::to_string(&h).expect("serializes");
        let back: ClusterHealth = serde_json::from_str(&json).expect("parses");
        assert_eq!(h, back);
        assert!(json.contains("\"level\":\"healthy\""));
    }
}
