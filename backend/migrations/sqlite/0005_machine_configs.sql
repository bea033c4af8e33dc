-- Machine configuration backups: one row per node and backup. The file itself is encrypted at
-- rest; the sha256 is of the plaintext, so a download can be checked against what was fetched.
CREATE TABLE machine_configs (
    id           TEXT PRIMARY KEY,
    cluster      TEXT NOT NULL,
    node         TEXT NOT NULL,
    taken_by     TEXT NOT NULL,
    taken_at_ms  BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    object_key   TEXT NOT NULL
);

CREATE INDEX machine_configs_cluster_taken ON machine_configs (cluster, taken_at_ms);
