-- Stripe webhook events, by their id: a second delivery of the same event has no effect. Only
-- what routing needs is kept (the object is read again from Stripe), so no personal data.
CREATE TABLE stripe_events (
    id TEXT PRIMARY KEY NOT NULL,
    event_type TEXT NOT NULL,
    object_id TEXT,
    received_at BIGINT NOT NULL
);

-- The customer's invoices as billing records: from Stripe (mirrored) or issued by staff for a
-- bank transfer. Money in minor units; `tax_lines` is JSON [{"tax_rate", "amount"}].
CREATE TABLE invoices (
    id BLOB PRIMARY KEY NOT NULL,
    customer_id BLOB NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    subscription_id BLOB REFERENCES subscriptions (id) ON DELETE SET NULL,
    method TEXT NOT NULL CHECK (method IN ('stripe', 'manual')),
    stripe_invoice_id TEXT UNIQUE,
    number TEXT,
    status TEXT NOT NULL,
    currency TEXT NOT NULL,
    subtotal BIGINT NOT NULL,
    tax BIGINT NOT NULL,
    total BIGINT NOT NULL,
    amount_due BIGINT NOT NULL,
    amount_paid BIGINT NOT NULL,
    tax_lines TEXT NOT NULL,
    period_start BIGINT,
    period_end BIGINT,
    card_last4 TEXT,
    paid_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX invoices_customer ON invoices (customer_id, created_at);
