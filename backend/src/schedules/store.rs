//! The schedule table: one schedule per cluster with its next run and last result.

use sqlx::{AnyPool, Row};

use crate::storage::{WriteLock, begin_write};
use talos_dr_shared::schedules::{RetentionPolicy, ScheduleRequest, ScheduledRun};

#[derive(Debug, thiserror::Error)]
pub enum ScheduleStoreError {
    #[error("snapshot schedules: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSchedule {
    pub cluster: String,
    pub request: ScheduleRequest,
    pub next_run_ms: Option<i64>,
    pub last_run: Option<ScheduledRun>,
    /// When an admin last set it: a run started before a change must not overwrite the new
    /// next run time.
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct ScheduleStore {
    pool: AnyPool,
}

fn count(n: Option<u32>) -> Option<i64> {
    n.map(i64::from)
}

fn read_count(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<u32>, sqlx::Error> {
    let n: Option<i64> = row.try_get(column)?;
    Ok(n.and_then(|n| u32::try_from(n).ok()))
}

fn read(row: &sqlx::any::AnyRow) -> Result<StoredSchedule, sqlx::Error> {
    let freshness: i64 = row.try_get("freshness_seconds")?;
    let jitter: i64 = row.try_get("jitter_seconds")?;
    let last_run_ms: Option<i64> = row.try_get("last_run_ms")?;
    let last_ok: Option<i64> = row.try_get("last_ok")?;
    let last_run = last_run_ms
        .map(|at_ms| -> Result<ScheduledRun, sqlx::Error> {
            Ok(ScheduledRun {
                at_ms,
                ok: last_ok == Some(1),
                snapshot_id: row.try_get("last_snapshot_id")?,
                failure: row.try_get("last_failure")?,
            })
        })
        .transpose()?;
    Ok(StoredSchedule {
        cluster: row.try_get("cluster")?,
        request: ScheduleRequest {
            cron: row.try_get("cron")?,
            retention: RetentionPolicy {
                keep_last: read_count(row, "keep_last")?,
                hourly: read_count(row, "keep_hourly")?,
                daily: read_count(row, "keep_daily")?,
                weekly: read_count(row, "keep_weekly")?,
            },
            freshness_seconds: u64::try_from(freshness).unwrap_or(0),
            jitter_seconds: u64::try_from(jitter).unwrap_or(0),
            rehearse: row.try_get::<i64, _>("rehearse")? != 0,
        },
        next_run_ms: row.try_get("next_run_ms")?,
        last_run,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}

impl ScheduleStore {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// Sets the cluster's schedule, keeping the last run's result.
    pub async fn put(
        &self,
        cluster: &str,
        request: &ScheduleRequest,
        next_run_ms: i64,
        updated_by: &str,
        now_ms: i64,
    ) -> Result<(), ScheduleStoreError> {
        let r = &request.retention;
        sqlx::query(
            "INSERT INTO snapshot_schedules (cluster, cron, keep_last, keep_hourly, keep_daily, \
             keep_weekly, freshness_seconds, jitter_seconds, rehearse, next_run_ms, updated_by, \
             updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (cluster) DO UPDATE SET cron = excluded.cron, keep_last = excluded.keep_last, \
             keep_hourly = excluded.keep_hourly, keep_daily = excluded.keep_daily, \
             keep_weekly = excluded.keep_weekly, freshness_seconds = excluded.freshness_seconds, \
             jitter_seconds = excluded.jitter_seconds, rehearse = excluded.rehearse, \
             next_run_ms = excluded.next_run_ms, \
             updated_by = excluded.updated_by, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(cluster)
        .bind(&request.cron)
        .bind(count(r.keep_last))
        .bind(count(r.hourly))
        .bind(count(r.daily))
        .bind(count(r.weekly))
        .bind(i64::try_from(request.freshness_seconds).unwrap_or(i64::MAX))
        .bind(i64::try_from(request.jitter_seconds).unwrap_or(i64::MAX))
        .bind(i64::from(request.rehearse))
        .bind(next_run_ms)
        .bind(updated_by)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn find(&self, cluster: &str) -> Result<Option<StoredSchedule>, ScheduleStoreError> {
        let row = sqlx::query("SELECT * FROM snapshot_schedules WHERE cluster = $1")
            .bind(cluster)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(read).transpose()?)
    }

    /// Schedules whose next run is at or before `now_ms`.
    pub async fn due(&self, now_ms: i64) -> Result<Vec<StoredSchedule>, ScheduleStoreError> {
        let rows = sqlx::query(
            "SELECT * FROM snapshot_schedules WHERE next_run_ms IS NOT NULL AND next_run_ms <= $1 \
             ORDER BY next_run_ms",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(read).collect::<Result<_, _>>()?)
    }

    pub async fn all(&self) -> Result<Vec<StoredSchedule>, ScheduleStoreError> {
        let rows = sqlx::query("SELECT * FROM snapshot_schedules ORDER BY cluster")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(read).collect::<Result<_, _>>()?)
    }

    /// Records a run and when the next one is due; the next run time is left alone when the
    /// schedule was changed after `schedule_updated_at_ms` (the change already set it).
    /// Takes the run due at `seen_next_run_ms` for this console: the next run time moves to
    /// `hold_until_ms` only if no other console did so first. A console that stops during the
    /// run leaves the schedule due again at `hold_until_ms`; a finished run sets the real one.
    pub async fn claim_run(
        &self,
        cluster: &str,
        seen_next_run_ms: i64,
        hold_until_ms: i64,
    ) -> Result<bool, ScheduleStoreError> {
        let done = sqlx::query(
            "UPDATE snapshot_schedules SET next_run_ms = $1 WHERE cluster = $2 AND next_run_ms = $3",
        )
        .bind(hold_until_ms)
        .bind(cluster)
        .bind(seen_next_run_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn record_run(
        &self,
        cluster: &str,
        run: &ScheduledRun,
        next_run_ms: Option<i64>,
        schedule_updated_at_ms: i64,
        audit: Option<crate::audit::NewAuditEntry>,
    ) -> Result<(), ScheduleStoreError> {
        // The run and its audit entry land together: the page never shows a run the audit
        // trail lacks.
        let mut tx = begin_write(&self.pool, WriteLock::Schedules).await?;
        sqlx::query(
            "UPDATE snapshot_schedules SET last_run_ms = $1, last_ok = $2, last_snapshot_id = $3, \
             last_failure = $4, \
             next_run_ms = CASE WHEN updated_at_ms = $5 THEN $6 ELSE next_run_ms END \
             WHERE cluster = $7",
        )
        .bind(run.at_ms)
        .bind(i64::from(run.ok))
        .bind(&run.snapshot_id)
        .bind(&run.failure)
        .bind(schedule_updated_at_ms)
        .bind(next_run_ms)
        .bind(cluster)
        .execute(&mut *tx)
        .await?;
        if let Some(entry) = audit {
            crate::audit::append_within(&mut tx, entry).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;

    fn request(cron: &str) -> ScheduleRequest {
        ScheduleRequest {
            cron: cron.into(),
            retention: RetentionPolicy {
                keep_last: Some(2),
                ..RetentionPolicy::default()
            },
            freshness_seconds: 3600,
            jitter_seconds: 0,
            rehearse: true,
        }
    }

    #[tokio::test]
    async fn a_run_started_before_a_change_keeps_the_new_next_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(dir.path()).await.expect("database opens");
        let store = ScheduleStore::new(storage.pool.clone());
        store
            .put("prod", &request("* * * * * *"), 1_000, "admin", 10)
            .await
            .expect("put");
        let running = store.due(1_000).await.expect("due").remove(0);
        // The admin changes the schedule while the run is taking its snapshot.
        store
            .put("prod", &request("0 0 1 1 *"), 9_000_000, "admin", 20)
            .await
            .expect("put");
        let run = ScheduledRun {
            at_ms: 1_000,
            ok: true,
            snapshot_id: Some("s1".into()),
            failure: None,
        };
        store
            .record_run("prod", &run, Some(2_000), running.updated_at_ms, None)
            .await
            .expect("record");
        let now = store.find("prod").await.expect("find").expect("stored");
        assert_eq!(now.next_run_ms, Some(9_000_000));
        assert!(now.request.rehearse, "the rehearse option is kept");
        assert_eq!(now.last_run, Some(run.clone()));
        assert!(store.due(5_000).await.expect("due").is_empty());

        // Without a change in between, the run sets the next run.
        store
            .record_run("prod", &run, Some(9_500_000), now.updated_at_ms, None)
            .await
            .expect("record");
        let after = store.find("prod").await.expect("find").expect("stored");
        assert_eq!(after.next_run_ms, Some(9_500_000));
    }
}
