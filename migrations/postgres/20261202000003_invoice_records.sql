-- Invoices are billing records kept for the legal retention period: they outlive the customer
-- (customer_id becomes NULL when the account goes) and carry the buyer as the billing details
-- were when the invoice was recorded (JSON), so a record without its account still names who
-- it was issued to.
ALTER TABLE invoices ALTER COLUMN customer_id DROP NOT NULL;
ALTER TABLE invoices DROP CONSTRAINT invoices_customer_id_fkey;
ALTER TABLE invoices ADD CONSTRAINT invoices_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE SET NULL;
ALTER TABLE invoices ADD COLUMN buyer TEXT;

-- Invoice numbers come from one counter row per series (M: manual invoices), taken in the
-- transaction that issues the invoice: consecutive, with no gap and no duplicate.
CREATE TABLE invoice_number_series (
    series TEXT PRIMARY KEY NOT NULL,
    last_number BIGINT NOT NULL
);
INSERT INTO invoice_number_series (series, last_number)
SELECT 'M', COALESCE(MAX(CAST(SUBSTRING(number FROM 3) AS BIGINT)), 0) FROM invoices WHERE method = 'manual';
