-- The Stripe price a subscription carries when it maps to no plan of the catalogue (changed in
-- Stripe's dashboard, say): recorded and flagged for staff instead of guessed. NULL otherwise.
ALTER TABLE subscriptions ADD COLUMN unknown_stripe_price TEXT;
