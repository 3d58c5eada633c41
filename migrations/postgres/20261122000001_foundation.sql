-- Durable job queue: any replica may claim a due job; a lease guards against two runners.
CREATE TABLE jobs (
    id UUID PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    payload JSONB NOT NULL,
    dedupe_key TEXT UNIQUE,
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at BIGINT NOT NULL,
    locked_by TEXT,
    locked_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs (status, run_at);

-- One audit/event log for security events and staff actions. Personal values live only in
-- `personal`, which erasure can pseudonymise without touching the rest of the row.
CREATE TABLE audit_log (
    id UUID PRIMARY KEY NOT NULL,
    occurred_at BIGINT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id UUID,
    customer_id UUID,
    action TEXT NOT NULL,
    target_kind TEXT,
    target_id TEXT,
    request_id TEXT,
    client_ip TEXT,
    details JSONB NOT NULL,
    personal JSONB
);
CREATE INDEX audit_log_customer ON audit_log (customer_id, occurred_at);
CREATE INDEX audit_log_actor ON audit_log (actor_id, occurred_at);
CREATE INDEX audit_log_time ON audit_log (occurred_at);

-- Sessions (tower-sessions), with what the account page will list: device, IP, times.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    data BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    account_id UUID,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    client_ip TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX sessions_account ON sessions (account_id);
