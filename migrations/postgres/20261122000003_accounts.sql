-- Customers pay; users sign in. A user is a member of a customer with a role; staff are users
-- with a staff role and no membership.
CREATE TABLE customers (
    id UUID PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id UUID PRIMARY KEY NOT NULL,
    -- As typed (trimmed); lookups use email_normalized. NULL until an X sign-up gives one.
    email TEXT,
    email_normalized TEXT UNIQUE,
    email_verified_at BIGINT,
    display_name TEXT NOT NULL,
    password_hash TEXT,
    password_scheme INTEGER,
    staff_role TEXT,
    age_confirmed_at BIGINT NOT NULL,
    terms_version TEXT NOT NULL,
    terms_accepted_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX users_unverified ON users (email_verified_at, created_at);

CREATE TABLE memberships (
    customer_id UUID NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'billing', 'technical')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (customer_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

-- External identities, keyed by (provider, subject), never by email.
CREATE TABLE identities (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX identities_user ON identities (user_id);
