-- Invoice numbers are unique (Stripe's, and the portal's own M-000001 sequence).
CREATE UNIQUE INDEX invoices_number ON invoices (number);
