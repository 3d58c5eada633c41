-- External sign-in flows already completed, by a hash of their state, so that a replayed
-- provider answer is refused on every replica. Rows go once the flow could no longer be valid.
CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
