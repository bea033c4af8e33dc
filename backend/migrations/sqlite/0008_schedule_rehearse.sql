-- Snapshot schedules may restore-rehearse each snapshot they take (0 = no, 1 = yes).
ALTER TABLE snapshot_schedules ADD COLUMN rehearse INTEGER NOT NULL DEFAULT 0;
