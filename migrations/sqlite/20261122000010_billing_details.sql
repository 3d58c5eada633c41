-- Billing details of a customer (P7), required before the first purchase, and every change to
-- them: who, when, which field, old and new value.
CREATE TABLE billing_details (
    customer_id BLOB PRIMARY KEY NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    company TEXT,
    address_line1 TEXT NOT NULL,
    address_line2 TEXT,
    postal_code TEXT NOT NULL,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    billing_email TEXT NOT NULL,
    vat_number TEXT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE billing_details_history (
    id BLOB PRIMARY KEY NOT NULL,
    customer_id BLOB NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    changed_at BIGINT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id BLOB,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT
);
CREATE INDEX billing_details_history_customer ON billing_details_history (customer_id, changed_at);
