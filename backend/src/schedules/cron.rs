//! Cron expressions: parsing (with the parser's reason when one does not parse) and the next
//! run time after a given moment. Pure: the time is passed in.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use croner::Cron;

#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error("cron: {expression:?} does not parse: {reason}")]
    Unparsable { expression: String, reason: String },
    #[error("cron: {expression:?} never fires after {after_ms} ms")]
    NeverFires { expression: String, after_ms: i64 },
}

/// A parsed schedule expression, in UTC.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    expression: String,
}

impl CronSchedule {
    pub fn parse(expression: &str) -> Result<Self, CronError> {
        let cron = Cron::from_str(expression).map_err(|e| CronError::Unparsable {
            expression: expression.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            cron,
            expression: expression.to_string(),
        })
    }

    /// The first time strictly after `after_ms` the expression matches.
    pub fn next_after(&self, after_ms: i64) -> Result<i64, CronError> {
        let never = || CronError::NeverFires {
            expression: self.expression.clone(),
            after_ms,
        };
        let start: DateTime<Utc> = DateTime::from_timestamp_millis(after_ms).ok_or_else(never)?;
        self.cron
            .find_next_occurrence(&start, false)
            .map(|t| t.timestamp_millis())
            .map_err(|_| never())
    }
}

/// The next run: the next cron time plus a random delay below `jitter_seconds`.
pub fn next_run_ms(
    schedule: &CronSchedule,
    after_ms: i64,
    jitter_seconds: u64,
) -> Result<i64, CronError> {
    use rand::Rng;
    let next = schedule.next_after(after_ms)?;
    if jitter_seconds == 0 {
        return Ok(next);
    }
    let bound_ms = i64::try_from(jitter_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    Ok(next.saturating_add(rand::thread_rng().gen_range(0..bound_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-25 12:00:00 UTC.
    const NOON: i64 = 1_795_608_000_000;
    const MINUTE: i64 = 60_000;

    #[test]
    fn five_field_expressions_run_on_the_minute() {
        let every_15 = CronSchedule::parse("*/15 * * * *").expect("parses");
        assert_eq!(every_15.next_after(NOON).expect("next"), NOON + 15 * MINUTE);
        assert_eq!(
            every_15.next_after(NOON + 1).expect("next"),
            NOON + 15 * MINUTE
        );
        let daily_2am = CronSchedule::parse("0 2 * * *").expect("parses");
        assert_eq!(
            daily_2am.next_after(NOON).expect("next"),
            NOON + 14 * 60 * MINUTE
        );
    }

    #[test]
    fn six_field_expressions_have_seconds() {
        let every_second = CronSchedule::parse("* * * * * *").expect("parses");
        assert_eq!(every_second.next_after(NOON).expect("next"), NOON + 1000);
    }

    #[test]
    fn bad_expressions_say_why() {
        for bad in ["", "every hour", "61 * * * *", "* * * *"] {
            let err = CronSchedule::parse(bad).expect_err(bad);
            assert!(err.to_string().contains("does not parse"), "{bad}: {err}");
        }
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        let hourly = CronSchedule::parse("0 * * * *").expect("parses");
        for _ in 0..50 {
            let next = next_run_ms(&hourly, NOON, 30).expect("next");
            assert!((NOON + 60 * MINUTE..NOON + 60 * MINUTE + 30_000).contains(&next));
        }
        assert_eq!(
            next_run_ms(&hourly, NOON, 0).expect("next"),
            NOON + 60 * MINUTE
        );
    }
}
