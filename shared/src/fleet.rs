//! Every watched cluster on one line: the fleet overview an SRE scans first when the console
//! watches more than one cluster.

use serde::{Deserialize, Serialize};

use crate::health::{ClusterHealth, MemberState, VerdictLevel};

/// One cluster's line on the fleet page. The health fields are `None` until the cluster's first
/// poll has finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetCluster {
    pub name: String,
    pub level: Option<VerdictLevel>,
    /// The quorum arithmetic in words, as on the cluster's own page.
    pub quorum_words: Option<String>,
    /// Healthy voting members.
    pub healthy: u32,
    /// Voting members.
    pub voters: u32,
    /// The leading member's node (or its host name when no polled node matches it).
    pub leader: Option<String>,
    /// When the shown health was observed (ms since the Unix epoch).
    pub observed_at_ms: Option<i64>,
    /// Users with the cluster's live health open, sorted, each once.
    pub viewers: Vec<String>,
}

impl FleetCluster {
    /// The line for `name`, from its latest health (if any) and its current viewers.
    pub fn from_health(name: &str, health: Option<&ClusterHealth>, viewers: Vec<String>) -> Self {
        let Some(health) = health else {
            return Self {
                name: name.to_string(),
                level: None,
                quorum_words: None,
                healthy: 0,
                voters: 0,
                leader: None,
                observed_at_ms: None,
                viewers,
            };
        };
        let leader = health
            .members
            .iter()
            .find(|m| m.is_leader && m.state != MemberState::Unknown)
            .or_else(|| health.members.iter().find(|m| m.is_leader))
            .map(|m| m.node.clone().unwrap_or_else(|| m.member.hostname.clone()));
        Self {
            name: name.to_string(),
            level: Some(health.verdict.level),
            quorum_words: Some(health.verdict.quorum_words.clone()),
            healthy: health.verdict.quorum.healthy,
            voters: health.verdict.quorum.voters,
            leader,
            observed_at_ms: Some(health.observed_at_ms),
            viewers,
        }
    }
}

/// `GET /api/fleet` and the data of the `fleet` event on `/api/fleet/stream`: every watched
/// cluster, in the order the console was configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fleet {
    pub clusters: Vec<FleetCluster>,
}
