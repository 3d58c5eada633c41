-- Settings the customer manages on a homeserver, applied to the running homeserver by the
-- supervisor (its configuration rewritten and the process restarted where they changed).
-- Registration: 'closed' (only users the portal adds), 'token' (with a registration token
-- from the homeserver's admin API) or 'open'.
ALTER TABLE homeservers ADD COLUMN registration TEXT NOT NULL DEFAULT 'closed';
ALTER TABLE homeservers ADD COLUMN federation BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE homeservers ADD COLUMN guest_access BOOLEAN NOT NULL DEFAULT FALSE;
-- Each change of the settings counts up `settings_version`; the supervisor writes the version
-- the running process was started with into `settings_applied`, so the page can say whether
-- the last change is in effect yet.
ALTER TABLE homeservers ADD COLUMN settings_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE homeservers ADD COLUMN settings_applied BIGINT NOT NULL DEFAULT 0;
-- Suspended by staff (not by dunning): stays suspended whatever billing does until staff
-- resume it.
ALTER TABLE homeservers ADD COLUMN staff_suspended_at BIGINT;
