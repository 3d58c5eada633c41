-- The SetupIntent that "Add a card" made and that still waits for a card: pressing the button
-- again reuses it instead of creating another at Stripe.
ALTER TABLE billing_accounts ADD COLUMN open_setup_intent_id TEXT;
