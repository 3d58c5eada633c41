-- Invoices are billing records kept for the legal retention period: they outlive the customer
-- (customer_id becomes NULL when the account goes) and carry the buyer as the billing details
-- were when the invoice was recorded (JSON), so a record without its account still names who
-- it was issued to. SQLite cannot change a foreign key: the table is made again.
CREATE TABLE invoices_new (
    id BLOB PRIMARY KEY NOT NULL,
    customer_id BLOB REFERENCES customers (id) ON DELETE SET NULL,
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
    updated_at BIGINT NOT NULL,
    due_at BIGINT,
    buyer TEXT
);
INSERT INTO invoices_new (id, customer_id, subscription_id, method, stripe_invoice_id, number, status, currency,
    subtotal, tax, total, amount_due, amount_paid, tax_lines, period_start, period_end, card_last4, paid_at,
    created_at, updated_at, due_at)
SELECT id, customer_id, subscription_id, method, stripe_invoice_id, number, status, currency,
    subtotal, tax, total, amount_due, amount_paid, tax_lines, period_start, period_end, card_last4, paid_at,
    created_at, updated_at, due_at FROM invoices;
DROP TABLE invoices;
ALTER TABLE invoices_new RENAME TO invoices;
CREATE INDEX invoices_customer ON invoices (customer_id, created_at);
CREATE UNIQUE INDEX invoices_number ON invoices (number);

-- Invoice numbers come from one counter row per series (M: manual invoices), taken in the
-- transaction that issues the invoice: consecutive, with no gap and no duplicate.
CREATE TABLE invoice_number_series (
    series TEXT PRIMARY KEY NOT NULL,
    last_number BIGINT NOT NULL
);
INSERT INTO invoice_number_series (series, last_number)
SELECT 'M', COALESCE(MAX(CAST(SUBSTR(number, 3) AS INTEGER)), 0) FROM invoices WHERE method = 'manual';
