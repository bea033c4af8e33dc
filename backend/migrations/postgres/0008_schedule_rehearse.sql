-- Snapshot schedules may restore-rehearse each snapshot they take (0 = no, 1 = yes).
ALTER TABLE snapshot_schedules ADD COLUMN rehearse BIGINT NOT NULL DEFAULT 0;
