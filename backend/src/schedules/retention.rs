//! Which stored scheduled snapshots a retention policy keeps. Pure: the time is passed in.

use std::collections::BTreeSet;

use talos_dr_shared::schedules::RetentionPolicy;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// One stored snapshot retention may delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionCandidate {
    pub id: String,
    pub taken_at_ms: i64,
    /// The inspector said it restores.
    pub verified: bool,
}

/// The UTC week (Monday to Sunday) a day belongs to; day 0, 1970-01-01, was a Thursday.
fn week_of(ms: i64) -> i64 {
    (ms.div_euclid(DAY_MS) + 3).div_euclid(7)
}

/// Keeps the newest candidate in each of the last `count` buckets, counting the bucket `now`
/// is in as the first.
fn keep_tier(
    sorted: &[&RetentionCandidate],
    count: u32,
    now_ms: i64,
    bucket: impl Fn(i64) -> i64,
    kept: &mut BTreeSet<String>,
) {
    let newest_bucket = bucket(now_ms);
    let oldest_bucket = newest_bucket - i64::from(count) + 1;
    let mut seen = BTreeSet::new();
    for c in sorted {
        let b = bucket(c.taken_at_ms);
        if b >= oldest_bucket && b <= newest_bucket && seen.insert(b) {
            kept.insert(c.id.clone());
        }
    }
}

/// The ids `policy` keeps at `now_ms`. Whatever the policy says, the newest verified candidate
/// is kept: retention never removes the last snapshot that restores.
pub fn kept(
    candidates: &[RetentionCandidate],
    policy: &RetentionPolicy,
    now_ms: i64,
) -> BTreeSet<String> {
    let mut sorted: Vec<&RetentionCandidate> = candidates.iter().collect();
    sorted.sort_by(|a, b| b.taken_at_ms.cmp(&a.taken_at_ms).then(b.id.cmp(&a.id)));
    let mut kept = BTreeSet::new();
    if let Some(n) = policy.keep_last {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        kept.extend(sorted.iter().take(n).map(|c| c.id.clone()));
    }
    if let Some(h) = policy.hourly {
        keep_tier(&sorted, h, now_ms, |ms| ms.div_euclid(HOUR_MS), &mut kept);
    }
    if let Some(d) = policy.daily {
        keep_tier(&sorted, d, now_ms, |ms| ms.div_euclid(DAY_MS), &mut kept);
    }
    if let Some(w) = policy.weekly {
        keep_tier(&sorted, w, now_ms, week_of, &mut kept);
    }
    if let Some(newest_verified) = sorted.iter().find(|c| c.verified) {
        kept.insert(newest_verified.id.clone());
    }
    kept
}

/// The candidates `policy` no longer keeps, oldest first.
pub fn to_delete(
    candidates: &[RetentionCandidate],
    policy: &RetentionPolicy,
    now_ms: i64,
) -> Vec<RetentionCandidate> {
    let keep = kept(candidates, policy, now_ms);
    let mut gone: Vec<RetentionCandidate> = candidates
        .iter()
        .filter(|c| !keep.contains(&c.id))
        .cloned()
        .collect();
    gone.sort_by_key(|c| c.taken_at_ms);
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-25 (a Wednesday) 12:00 UTC.
    const NOW: i64 = 1_795_608_000_000;

    fn snap(id: &str, hours_ago: f64) -> RetentionCandidate {
        RetentionCandidate {
            id: id.into(),
            taken_at_ms: NOW - (hours_ago * HOUR_MS as f64) as i64,
            verified: true,
        }
    }

    fn ids(set: &BTreeSet<String>) -> Vec<&str> {
        set.iter().map(String::as_str).collect()
    }

    fn policy(
        last: Option<u32>,
        h: Option<u32>,
        d: Option<u32>,
        w: Option<u32>,
    ) -> RetentionPolicy {
        RetentionPolicy {
            keep_last: last,
            hourly: h,
            daily: d,
            weekly: w,
        }
    }

    #[test]
    fn keep_last_keeps_the_newest_n() {
        let c = vec![
            snap("a", 4.0),
            snap("b", 3.0),
            snap("c", 2.0),
            snap("d", 1.0),
        ];
        let kept = kept(&c, &policy(Some(2), None, None, None), NOW);
        assert_eq!(ids(&kept), vec!["c", "d"]);
        let gone: Vec<String> = to_delete(&c, &policy(Some(2), None, None, None), NOW)
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(gone, vec!["a", "b"]);
    }

    #[test]
    fn hourly_keeps_the_newest_of_each_recent_hour() {
        // Two in the current hour (11:50 and 11:10 are the previous hour; 12:00 is now).
        let c = vec![
            snap("now-hour", 0.0),
            snap("prev-late", 0.2),
            snap("prev-early", 0.8),
            snap("two-ago", 1.5),
            snap("too-old", 3.5),
        ];
        let kept = kept(&c, &policy(None, Some(3), None, None), NOW);
        assert_eq!(ids(&kept), vec!["now-hour", "prev-late", "two-ago"]);
    }

    #[test]
    fn daily_and_weekly_tiers_pick_one_per_bucket() {
        let c = vec![
            snap("today", 1.0),
            snap("today-early", 10.0),
            snap("yesterday", 20.0),
            snap("two-days", 44.0),
            // Monday 2026-11-23 is this week; Sunday 2026-11-22 is last week.
            snap("last-week-sunday", 62.0),
            snap("last-week-saturday", 100.0),
            snap("three-weeks", 24.0 * 21.0),
        ];
        assert_eq!(
            ids(&kept(&c, &policy(None, None, Some(2), None), NOW)),
            vec!["today", "yesterday"]
        );
        assert_eq!(
            ids(&kept(&c, &policy(None, None, None, Some(2)), NOW)),
            vec!["last-week-sunday", "today"]
        );
    }

    #[test]
    fn combined_tiers_keep_the_union() {
        let c = vec![
            snap("a", 0.5),
            snap("b", 1.5),
            snap("c", 30.0),
            snap("d", 55.0),
        ];
        let kept = kept(&c, &policy(Some(1), Some(3), Some(2), None), NOW);
        assert_eq!(ids(&kept), vec!["a", "b", "c"]);
    }

    #[test]
    fn the_newest_verified_snapshot_is_never_deleted() {
        // Every snapshot is older than the hourly window; one newer one does not restore.
        let mut broken = snap("broken", 10.0);
        broken.verified = false;
        let c = vec![broken, snap("good", 12.0), snap("older", 14.0)];
        let kept = kept(&c, &policy(None, Some(2), None, None), NOW);
        assert_eq!(ids(&kept), vec!["good"]);
    }

    #[test]
    fn an_empty_history_keeps_nothing_and_deletes_nothing() {
        assert!(to_delete(&[], &policy(Some(3), None, None, None), NOW).is_empty());
    }
}
