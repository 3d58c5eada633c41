-- When a manual invoice is due: unpaid after it, its subscription is past due (dunning).
ALTER TABLE invoices ADD COLUMN due_at BIGINT;
