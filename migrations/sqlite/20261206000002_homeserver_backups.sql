-- Backups of each homeserver (made daily while it runs; the newest few kept). The files are
-- kept by the homeserver's provisioner; this lists them.
CREATE TABLE homeserver_backups (
    id BLOB PRIMARY KEY NOT NULL,
    homeserver_id BLOB NOT NULL REFERENCES homeservers (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    -- 'making', 'done' or 'failed'.
    state TEXT NOT NULL,
    size_bytes BIGINT,
    -- Why it failed, in words.
    error TEXT
);
CREATE INDEX homeserver_backups_homeserver ON homeserver_backups (homeserver_id, created_at);
-- The backup a homeserver in the 'restoring' state is being restored from.
ALTER TABLE homeservers ADD COLUMN restore_backup_id BLOB;
