-- Snapshot history: one row per attempt. A stored snapshot has its object key, sha256, size and
-- what the inspector found; a failed attempt has its reason and no object. Inspector results are
-- kept as JSON text so the history can show them without reading the file again.
CREATE TABLE snapshots (
    id              TEXT PRIMARY KEY,
    cluster         TEXT NOT NULL,
    node            TEXT,
    taken_by        TEXT NOT NULL,
    taken_at_ms     BIGINT NOT NULL,
    trigger_kind    TEXT NOT NULL,
    kind            TEXT NOT NULL,
    stored_as       TEXT,
    failure         TEXT,
    object_key      TEXT,
    sha256          TEXT,
    size_bytes      BIGINT,
    status_json     TEXT,
    contents_json   TEXT,
    verdict_json    TEXT,
    rehearsal_json  TEXT
);

CREATE INDEX snapshots_cluster_taken ON snapshots (cluster, taken_at_ms);
