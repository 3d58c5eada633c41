-- The Stripe invoice whose payment waits for the customer (3-D Secure, or a first payment
-- Stripe leaves to the browser): the dashboard asks for it, the payment-confirmation page
-- confirms it. Null once that invoice is paid or closed.
ALTER TABLE subscriptions ADD COLUMN payment_action_invoice TEXT;
-- When the customer was last emailed about it (one email per invoice).
ALTER TABLE subscriptions ADD COLUMN payment_action_notified TEXT;
