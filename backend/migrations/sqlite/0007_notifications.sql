-- Webhook notifications: one receiver per cluster, and an outbox of notifications to deliver.
-- The outbox is the queue: a notification survives a restart of the console, and each row is
-- claimed by one worker at a time (`claimed_until_ms`), so several consoles on one database
-- deliver it once.
CREATE TABLE webhooks (
    cluster        TEXT PRIMARY KEY,
    url            TEXT NOT NULL,
    format         TEXT NOT NULL,
    updated_by     TEXT NOT NULL,
    updated_at_ms  BIGINT NOT NULL
);

CREATE TABLE notification_outbox (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster             TEXT NOT NULL,
    kind                TEXT NOT NULL,
    title               TEXT NOT NULL,
    body_json           TEXT NOT NULL,
    created_at_ms       BIGINT NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms  BIGINT,
    claimed_until_ms    BIGINT,
    delivered_at_ms     BIGINT,
    failed_at_ms        BIGINT,
    last_error          TEXT
);

CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at_ms);
CREATE INDEX notification_outbox_cluster ON notification_outbox (cluster, created_at_ms);
