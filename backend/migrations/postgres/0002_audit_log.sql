-- The audit trail. Each entry carries the SHA-256 of the previous one, so a changed, removed or
-- reordered row breaks the chain and `talos-dr audit verify` names it. `seq` is given by the
-- writer (previous + 1); the primary key refuses a second entry claiming the same place.
CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    at_ms      BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    roles      TEXT NOT NULL,
    action     TEXT NOT NULL,
    cluster    TEXT,
    target     TEXT,
    parameters TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    client     TEXT,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);

CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_cluster ON audit_log (cluster, seq);
CREATE INDEX audit_log_at ON audit_log (at_ms);

-- Append-only inside the console's own database. The hash chain is what catches changes made
-- around this trigger (by someone who can drop it).
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
