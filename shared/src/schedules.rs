//! Snapshot schedules: when a cluster's snapshots are taken, how many are kept, and how fresh
//! the newest verified one must be.

use serde::{Deserialize, Serialize};

/// Which stored scheduled snapshots survive a run. Every count is optional; at least one must
/// keep something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// The newest N.
    #[serde(default)]
    pub keep_last: Option<u32>,
    /// The newest snapshot of each of the last H hours.
    #[serde(default)]
    pub hourly: Option<u32>,
    /// The newest snapshot of each of the last D days (UTC).
    #[serde(default)]
    pub daily: Option<u32>,
    /// The newest snapshot of each of the last W weeks (Monday to Sunday, UTC).
    #[serde(default)]
    pub weekly: Option<u32>,
}

impl RetentionPolicy {
    /// False when every count is missing or zero: such a policy would delete everything.
    pub fn keeps_something(&self) -> bool {
        [self.keep_last, self.hourly, self.daily, self.weekly]
            .iter()
            .any(|n| n.is_some_and(|n| n > 0))
    }
}

/// What an admin sets with `PUT /api/clusters/{cluster}/schedule`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRequest {
    /// Five fields (minute hour day month weekday) or six with seconds first, in UTC.
    pub cron: String,
    pub retention: RetentionPolicy,
    /// The newest verified snapshot must be younger than this.
    pub freshness_seconds: u64,
    /// Each run waits a random delay up to this, so many clusters do not fire at once.
    #[serde(default)]
    pub jitter_seconds: u64,
    /// Restore each stored scheduled snapshot into a throwaway etcd right after it is taken
    /// (a failed rehearsal marks the entry and keeps it from counting as verified).
    #[serde(default)]
    pub rehearse: bool,
}

/// How the last scheduled run went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledRun {
    pub at_ms: i64,
    pub ok: bool,
    /// The history entry the run left, stored or failed.
    pub snapshot_id: Option<String>,
    pub failure: Option<String>,
}

/// `GET /api/clusters/{cluster}/schedule`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleView {
    pub cluster: String,
    /// None when no schedule is set; the freshness fields are still reported.
    pub schedule: Option<ScheduleRequest>,
    pub next_run_ms: Option<i64>,
    pub last_run: Option<ScheduledRun>,
    /// Age of the newest verified snapshot (any trigger), if there is one.
    pub newest_verified_age_seconds: Option<u64>,
    /// Whether that age is within the schedule's freshness target (false with no schedule or
    /// no verified snapshot).
    pub freshness_met: bool,
}
