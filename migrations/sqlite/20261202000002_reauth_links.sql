-- Re-authentication links (for accounts whose sign-in provider cannot prove a fresh sign-in).
-- SQLite cannot change a CHECK constraint: the table is made again with the new list.
CREATE TABLE email_tokens_new (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify', 'reset', 'change', 'reauth')),
    email TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    created_at BIGINT NOT NULL
);
INSERT INTO email_tokens_new SELECT token_hash, user_id, purpose, email, expires_at, used_at, created_at FROM email_tokens;
DROP TABLE email_tokens;
ALTER TABLE email_tokens_new RENAME TO email_tokens;
CREATE INDEX email_tokens_user ON email_tokens (user_id, purpose, created_at);
