-- VAT numbers as VIES saw them: reverse charge only for a number VIES said is valid. The
-- request date and identifier (VIES's consultation number) are the proof a tax office asks
-- for; the registered name and address are what VIES returned. Numbers entered before are
-- checked by the next pass of the check job.
ALTER TABLE billing_details ADD COLUMN vat_status TEXT NOT NULL DEFAULT 'none';
ALTER TABLE billing_details ADD COLUMN vat_checked_at BIGINT;
ALTER TABLE billing_details ADD COLUMN vat_request_date TEXT;
ALTER TABLE billing_details ADD COLUMN vat_request_id TEXT;
ALTER TABLE billing_details ADD COLUMN vat_registered_name TEXT;
ALTER TABLE billing_details ADD COLUMN vat_registered_address TEXT;
ALTER TABLE billing_details ADD COLUMN vat_check_error TEXT;
UPDATE billing_details SET vat_status = 'checking' WHERE vat_number IS NOT NULL;
