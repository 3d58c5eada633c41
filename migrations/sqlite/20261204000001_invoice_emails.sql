-- When the invoice's email (issued; receipt) was queued: each goes out once per invoice,
-- whichever replica or repeated Stripe event gets there first.
ALTER TABLE invoices ADD COLUMN issued_email_at BIGINT;
ALTER TABLE invoices ADD COLUMN receipt_email_at BIGINT;
-- Manual invoices issued so far were emailed in the transaction that issued them, and their
-- receipts when marked paid. Card invoices paid before receipts existed get none now: a
-- receipt weeks late would confuse more than help.
UPDATE invoices SET issued_email_at = created_at WHERE method = 'manual';
UPDATE invoices SET receipt_email_at = COALESCE(paid_at, updated_at) WHERE status = 'paid';
