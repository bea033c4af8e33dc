-- Console processes sharing this database. Each one writes its heartbeat; a step claimed by a
-- process whose heartbeat stopped is taken over by a live one (and judged from the node), while
-- a step claimed by a live one is left to it.
CREATE TABLE console_replicas (
    instance       TEXT PRIMARY KEY,
    started_at_ms  BIGINT NOT NULL,
    seen_at_ms     BIGINT NOT NULL
);

-- Work one process at a time must do (an incident's timeline feeders, say): the holder renews
-- its lease; when it stops renewing, another process takes the work over.
CREATE TABLE console_leases (
    name           TEXT PRIMARY KEY,
    holder         TEXT NOT NULL,
    expires_at_ms  BIGINT NOT NULL
);

-- Who watches an incident through which console process, so every replica lists everyone.
CREATE TABLE incident_watchers (
    incident_id    TEXT NOT NULL,
    instance       TEXT NOT NULL,
    username       TEXT NOT NULL,
    seen_at_ms     BIGINT NOT NULL,
    PRIMARY KEY (incident_id, instance, username)
);

-- Every replica notices the same incident change; the key keeps one notification of it.
ALTER TABLE notification_outbox ADD COLUMN dedupe_key TEXT;
CREATE UNIQUE INDEX notification_outbox_once ON notification_outbox (dedupe_key);
