-- Failed sign-ins per account: each failure past the fifth doubles the wait before the next
-- attempt (no hard lockout that a stranger could use to lock someone out).
ALTER TABLE users ADD COLUMN sign_in_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_sign_in_failure_at BIGINT;
