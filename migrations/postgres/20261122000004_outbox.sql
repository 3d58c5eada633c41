-- Emails waiting to be sent. Written in the same transaction as the change that causes them;
-- the `email.send` job delivers and deletes them.
CREATE TABLE outbox_emails (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbox_emails_user ON outbox_emails (user_id);
