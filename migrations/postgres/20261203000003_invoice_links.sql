-- Capability links to an invoice (/i/{token}): the token itself is never stored, only its
-- SHA-256, by which it is looked up. Who made it, when it was last opened and how often are
-- the access records the customer sees; a revoked or expired link answers as an unknown one.
CREATE TABLE invoice_links (
    id UUID PRIMARY KEY NOT NULL,
    invoice_id UUID NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    created_by UUID REFERENCES users (id) ON DELETE SET NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_opened_at BIGINT,
    open_count BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX invoice_links_invoice ON invoice_links (invoice_id);
