-- Re-authentication links (for accounts whose sign-in provider cannot prove a fresh sign-in).
ALTER TABLE email_tokens DROP CONSTRAINT email_tokens_purpose_check;
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_purpose_check
    CHECK (purpose IN ('verify', 'reset', 'change', 'reauth'));
