-- When the session's holder signed in: the absolute session lifetime counts from here.
ALTER TABLE sessions ADD COLUMN signed_in_at BIGINT;
