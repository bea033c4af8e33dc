//! Freshness: how old the newest verified snapshot is and whether that meets the target.

use talos_dr_shared::snapshots::SnapshotEntry;

/// Stored, and the inspector said it restores as it is.
pub fn is_verified(entry: &SnapshotEntry) -> bool {
    entry.failure.is_none()
        && entry
            .verdict
            .as_ref()
            .is_some_and(|v| v.restorability == "restores")
        && entry.rehearsal.as_ref().is_none_or(|r| r.passed)
}

/// Age in seconds of the newest verified entry at `now_ms`.
pub fn newest_verified_age_seconds(entries: &[SnapshotEntry], now_ms: i64) -> Option<u64> {
    entries
        .iter()
        .filter(|e| is_verified(e))
        .map(|e| e.taken_at_ms)
        .max()
        .map(|t| u64::try_from(now_ms.saturating_sub(t).max(0) / 1000).unwrap_or(0))
}

/// Met when there is a verified snapshot younger than the target.
pub fn freshness_met(age_seconds: Option<u64>, target_seconds: Option<u64>) -> bool {
    matches!((age_seconds, target_seconds), (Some(age), Some(target)) if age <= target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_needs_a_young_enough_verified_snapshot() {
        assert!(freshness_met(Some(3600), Some(6 * 3600)));
        assert!(!freshness_met(Some(7 * 3600), Some(6 * 3600)));
        assert!(!freshness_met(None, Some(6 * 3600)));
        assert!(!freshness_met(Some(10), None));
    }
}
