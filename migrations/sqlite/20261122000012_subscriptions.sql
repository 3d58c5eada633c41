-- How each customer pays: through Stripe (card) or by bank transfer against manual invoices,
-- and the currency fixed at the first purchase.
CREATE TABLE billing_accounts (
    customer_id BLOB PRIMARY KEY NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    method TEXT NOT NULL CHECK (method IN ('stripe', 'manual')),
    currency TEXT,
    stripe_customer_id TEXT UNIQUE,
    -- Stored before the Stripe customer is created: a retry sends the same Idempotency-Key.
    stripe_customer_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The card invoices are charged to: never its number, only what identifies it to a person.
CREATE TABLE cards (
    customer_id BLOB PRIMARY KEY NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    stripe_payment_method_id TEXT NOT NULL,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    exp_month INTEGER NOT NULL,
    exp_year INTEGER NOT NULL,
    added_at BIGINT NOT NULL
);

-- A homeserver a customer ordered. Its region is fixed for its life; its name is reserved in
-- server_names. `state` is the homeserver's own life: waiting_for_payment, then
-- waiting_for_provisioning once paid, until the provisioning work takes it further.
CREATE TABLE homeservers (
    id BLOB PRIMARY KEY NOT NULL,
    customer_id BLOB NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    name TEXT NOT NULL UNIQUE REFERENCES server_names (name),
    region TEXT NOT NULL,
    state TEXT NOT NULL,
    -- Set by dunning: the homeserver is to be suspended (the homeserver work acts on it).
    suspension_marked_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX homeservers_customer ON homeservers (customer_id, created_at);

-- One subscription per homeserver, as at EMS. `status` uses Stripe's words (pending before
-- Stripe answered, then incomplete, trialing, active, past_due, canceled, unpaid).
CREATE TABLE subscriptions (
    id BLOB PRIMARY KEY NOT NULL,
    customer_id BLOB NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    homeserver_id BLOB NOT NULL UNIQUE REFERENCES homeservers (id) ON DELETE CASCADE,
    plan_id TEXT NOT NULL,
    billing_interval TEXT NOT NULL CHECK (billing_interval IN ('monthly', 'annual')),
    currency TEXT NOT NULL,
    method TEXT NOT NULL CHECK (method IN ('stripe', 'manual')),
    status TEXT NOT NULL,
    tax_key TEXT,
    tax_rate_bp INTEGER NOT NULL,
    -- Stored before the Stripe call and sent as its Idempotency-Key.
    idempotency_key TEXT NOT NULL UNIQUE,
    stripe_subscription_id TEXT UNIQUE,
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE,
    current_period_end BIGINT,
    trial_end BIGINT,
    past_due_since BIGINT,
    canceled_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id, created_at);

-- Stripe tax rates made for tax decisions (`vat-FI-2550` -> txr_...).
CREATE TABLE stripe_tax_rates (
    decision_key TEXT PRIMARY KEY NOT NULL,
    stripe_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
