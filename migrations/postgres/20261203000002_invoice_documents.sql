-- Each finalised invoice's document, frozen when it is finalised (JSON: number, dates, period,
-- seller, buyer, lines, taxes with their legal note, totals) and never changed after; the
-- payment state stays in the invoice's own columns. A total that does not add up from the
-- lines is recorded, never hidden. Invoices recorded before get theirs from the backfill job.
ALTER TABLE invoices ADD COLUMN document TEXT;
ALTER TABLE invoices ADD COLUMN frozen_at BIGINT;
ALTER TABLE invoices ADD COLUMN totals_mismatch TEXT;
