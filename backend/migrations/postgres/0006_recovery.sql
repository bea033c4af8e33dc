-- Staged recoveries: an incident per recovery, its plan of steps, the answers to each step's
-- request, and the incident's timeline. Plain types (TEXT, BIGINT) and no engine-specific
-- syntax, so the same schema serves PostgreSQL. Structured values the browser reads as a whole
-- (pre-check report, chosen snapshot, targets) are JSON text.
CREATE TABLE incidents (
    id                  TEXT PRIMARY KEY,
    cluster             TEXT NOT NULL,
    status              TEXT NOT NULL,
    reason              TEXT NOT NULL,
    opened_by           TEXT NOT NULL,
    opened_at_ms        BIGINT NOT NULL,
    closed_by           TEXT,
    closed_at_ms        BIGINT,
    summary             TEXT,
    precheck_json       TEXT,
    override_json       TEXT,
    snapshot_json       TEXT,
    bootstrap_node      TEXT,
    policy_json         TEXT NOT NULL
);

-- One open incident per cluster, enforced by the database so two consoles cannot both open one.
CREATE UNIQUE INDEX incidents_one_open_per_cluster ON incidents (cluster) WHERE status = 'open';
CREATE INDEX incidents_cluster_opened ON incidents (cluster, opened_at_ms);

-- A step's state only moves through conditional updates (`WHERE id = $1 AND state = $2`), so two
-- processes cannot both claim it. `claimed_by` names the console process, `boot_id_before` the
-- node's boot id read before a reset or reboot was sent: what a restart compares against.
CREATE TABLE recovery_steps (
    id                  TEXT PRIMARY KEY,
    incident_id         TEXT NOT NULL REFERENCES incidents (id),
    position            BIGINT NOT NULL,
    kind                TEXT NOT NULL,
    target_json         TEXT,
    params_json         TEXT NOT NULL,
    state               TEXT NOT NULL,
    talosctl            TEXT NOT NULL,
    request_no          BIGINT NOT NULL DEFAULT 0,
    requested_by        TEXT,
    requested_at_ms     BIGINT,
    request_reason      TEXT,
    request_target      TEXT,
    run_by              TEXT,
    started_at_ms       BIGINT,
    finished_at_ms      BIGINT,
    deadline_at_ms      BIGINT,
    progress_done       BIGINT,
    progress_total      BIGINT,
    detail              TEXT,
    claimed_by          TEXT,
    claimed_at_ms       BIGINT,
    boot_id_before      TEXT,
    UNIQUE (incident_id, position)
);

-- Answers to one request of a step (`request_no`): a new request starts a new list. The key
-- makes a second answer by the same person impossible.
CREATE TABLE step_approvals (
    step_id             TEXT NOT NULL REFERENCES recovery_steps (id),
    request_no          BIGINT NOT NULL,
    approver            TEXT NOT NULL,
    decision            TEXT NOT NULL,
    at_ms               BIGINT NOT NULL,
    expires_at_ms       BIGINT NOT NULL,
    reason              TEXT,
    break_glass         BIGINT NOT NULL,
    target_state        TEXT NOT NULL,
    PRIMARY KEY (step_id, request_no, approver)
);

CREATE TABLE incident_timeline (
    id                  BIGINT PRIMARY KEY,
    incident_id         TEXT NOT NULL REFERENCES incidents (id),
    at_ms               BIGINT NOT NULL,
    kind                TEXT NOT NULL,
    actor               TEXT,
    step_id             TEXT,
    text                TEXT NOT NULL,
    loud                BIGINT NOT NULL
);

CREATE INDEX incident_timeline_incident ON incident_timeline (incident_id, id);
