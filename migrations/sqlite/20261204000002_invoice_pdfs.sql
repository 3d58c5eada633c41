-- Each finalised invoice's PDF, rendered once from its frozen document and kept with its
-- SHA-256, so every replica serves the same bytes and a changed file would show.
CREATE TABLE invoice_pdfs (
    invoice_id BLOB PRIMARY KEY NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    pdf BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    rendered_at BIGINT NOT NULL
);
