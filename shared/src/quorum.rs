//! Raft quorum arithmetic, in the words an SRE uses during an outage.

use serde::{Deserialize, Serialize};

/// Quorum facts for a cluster of `voters` voting members (learners do not vote).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorum {
    pub voters: u32,
    pub healthy: u32,
}

impl Quorum {
    pub fn new(voters: u32, healthy: u32) -> Self {
        Self {
            voters,
            healthy: healthy.min(voters),
        }
    }

    /// Members that must agree for etcd to accept a write: a strict majority.
    pub fn needed(&self) -> u32 {
        self.voters / 2 + 1
    }

    /// How many members may fail before writes stop, for a cluster of this size.
    pub fn fault_tolerance(&self) -> u32 {
        self.voters.saturating_sub(self.needed())
    }

    /// Quorum holds when enough healthy voters remain. A cluster with no voters has no quorum.
    pub fn holds(&self) -> bool {
        self.voters > 0 && self.healthy >= self.needed()
    }

    /// How many more healthy members can be lost before quorum is lost (0 once it is gone).
    pub fn margin(&self) -> u32 {
        if self.holds() {
            self.healthy - self.needed()
        } else {
            0
        }
    }

    /// How many members must come back before quorum returns (0 while it holds).
    pub fn missing(&self) -> u32 {
        self.needed().saturating_sub(self.healthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_members_tolerate_one_failure() {
        let all = Quorum::new(3, 3);
        assert_eq!(
            (all.needed(), all.fault_tolerance(), all.margin()),
            (2, 1, 1)
        );
        let one_down = Quorum::new(3, 2);
        assert!(one_down.holds());
        assert_eq!(one_down.margin(), 0);
        let two_down = Quorum::new(3, 1);
        assert!(!two_down.holds());
        assert_eq!(two_down.missing(), 1);
    }

    #[test]
    fn even_clusters_gain_no_tolerance() {
        assert_eq!(Quorum::new(4, 4).fault_tolerance(), 1);
        assert!(!Quorum::new(4, 2).holds());
        assert_eq!(Quorum::new(5, 5).fault_tolerance(), 2);
    }

    #[test]
    fn empty_and_single_member_clusters() {
        assert!(!Quorum::new(0, 0).holds());
        assert!(Quorum::new(1, 1).holds());
        assert_eq!(Quorum::new(1, 1).fault_tolerance(), 0);
        assert!(!Quorum::new(1, 0).holds());
        // More healthy than voters (stale data) is clamped, never over-reports.
        assert_eq!(Quorum::new(3, 7).healthy, 3);
    }
}
