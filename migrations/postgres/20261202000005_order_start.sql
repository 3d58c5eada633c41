-- Who is creating an order's Stripe subscription, until when: the request that placed it, or
-- the recovery job when that request died. One at a time, so a double click or a recovery
-- that overlaps a slow request never makes two.
ALTER TABLE subscriptions ADD COLUMN start_claimed_until BIGINT;
