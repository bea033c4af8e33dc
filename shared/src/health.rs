//! The cluster health model: what the poller saw on each control-plane node, and the verdict an
//! SRE reads first (healthy, degraded, quorum restorable, full recovery needed). The verdict is computed here, once, so the
//! server, the browser and the tests can never disagree about it.

use serde::{Deserialize, Serialize};

use crate::quorum::Quorum;

mod findings;
mod verdict;

pub use findings::{Finding, FindingKind};
pub use verdict::assess;

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

impl MachineType {
    /// As Talos prints it (`talosctl get machinetype`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Init => "init",
            Self::Controlplane => "controlplane",
            Self::Worker => "worker",
        }
    }
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
    /// Quorum holds, but at least one thing is wrong: fix the broken member.
    Degraded,
    /// Quorum is lost, but enough members still hold their data to bring it back.
    QuorumRestorable,
    /// Quorum is lost and too few members can come back: restore from a snapshot.
    FullRecoveryNeeded,
    /// Too many nodes unreachable to tell.
    Unknown,
}

impl VerdictLevel {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::QuorumRestorable => "quorum restorable",
            Self::FullRecoveryNeeded => "full recovery needed",
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
    /// The quorum arithmetic in plain words: "3 members, 1 healthy, quorum needs 2: lost".
    pub quorum_words: String,
    /// What the SRE should do next, naming the nodes to act on.
    pub next_move: String,
    /// Every finding behind the verdict, most important first.
    pub reasons: Vec<String>,
    /// Disagreements between the nodes' views and other structural problems.
    pub findings: Vec<Finding>,
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

impl ClusterHealth {
    pub fn build(
        cluster: String,
        observed_at_ms: i64,
        nodes: Vec<NodeHealth>,
        remembered: &[EtcdMember],
    ) -> Self {
        let (members, verdict) = assess(&nodes, remembered);
        Self {
            cluster,
            observed_at_ms,
            nodes,
            members,
            verdict,
        }
    }
}

#[cfg(test)]
mod tests;
