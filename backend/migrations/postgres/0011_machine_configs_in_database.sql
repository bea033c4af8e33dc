-- Sealed machine configs live in the database, so every console replica can hand them out and a
-- backup of the database holds them. Rows without it point to a sealed file in the data
-- directory (`object_key`), as backups were kept before.
ALTER TABLE machine_configs ADD COLUMN sealed BYTEA;
