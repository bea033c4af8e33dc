-- Snapshot schedules: one per cluster, with the state of its last run. The next run time already
-- includes the jitter, so a restart does not make every cluster fire at once.
CREATE TABLE snapshot_schedules (
    cluster             TEXT PRIMARY KEY,
    cron                TEXT NOT NULL,
    keep_last           BIGINT,
    keep_hourly         BIGINT,
    keep_daily          BIGINT,
    keep_weekly         BIGINT,
    freshness_seconds   BIGINT NOT NULL,
    jitter_seconds      BIGINT NOT NULL,
    next_run_ms         BIGINT,
    last_run_ms         BIGINT,
    last_ok             BIGINT,
    last_snapshot_id    TEXT,
    last_failure        TEXT,
    updated_by          TEXT NOT NULL,
    updated_at_ms       BIGINT NOT NULL
);
