-- Provisioning: where a homeserver runs, and what the portal keeps to administer it.
-- The loopback port of a homeserver on the local driver, kept for its life (NULL elsewhere).
ALTER TABLE homeservers ADD COLUMN port INTEGER;
CREATE UNIQUE INDEX homeservers_port ON homeservers (port);
-- The last failure of its lifecycle, in words (cleared when a step succeeds).
ALTER TABLE homeservers ADD COLUMN last_error TEXT;
-- The portal's own admin user on the homeserver: its password and access token, sealed with
-- the portal's SecretBox. The password is chosen before the user is registered, so a retried
-- registration signs in instead of making a second user.
ALTER TABLE homeservers ADD COLUMN service_password TEXT;
ALTER TABLE homeservers ADD COLUMN service_token TEXT;
-- The customer's first admin: its user name, and its generated password sealed until the
-- customer reveals it once (then emptied).
ALTER TABLE homeservers ADD COLUMN admin_user TEXT;
ALTER TABLE homeservers ADD COLUMN admin_password TEXT;
ALTER TABLE homeservers ADD COLUMN admin_password_revealed_at BIGINT;
ALTER TABLE homeservers ADD COLUMN running_since BIGINT;
-- A homeserver whose subscription ended keeps its data until then (PORTAL_HOMESERVER_RETENTION_DAYS).
ALTER TABLE homeservers ADD COLUMN terminate_after BIGINT;
-- Monitoring: since when its health check fails (NULL: it answers), and when the customer was
-- told it is down (once per outage).
ALTER TABLE homeservers ADD COLUMN down_since BIGINT;
ALTER TABLE homeservers ADD COLUMN down_alerted_at BIGINT;

-- What happened to a homeserver's process and lifecycle: started, exited, restarted, failed.
CREATE TABLE homeserver_events (
    id BLOB PRIMARY KEY NOT NULL,
    homeserver_id BLOB NOT NULL REFERENCES homeservers (id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX homeserver_events_homeserver ON homeserver_events (homeserver_id, at);

-- The periodic health check of each running homeserver (kept 30 days): uptime is the share of
-- checks that it answered.
CREATE TABLE homeserver_health (
    homeserver_id BLOB NOT NULL REFERENCES homeservers (id) ON DELETE CASCADE,
    checked_at BIGINT NOT NULL,
    healthy BOOLEAN NOT NULL,
    PRIMARY KEY (homeserver_id, checked_at)
);

-- Named leases: one replica holds each until it lapses (the homeserver supervisor's).
CREATE TABLE leases (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
