//! The registry of personal data: every table the portal creates is listed here, either with
//! each of its columns (how it is exported and how it is erased) or as holding no personal data,
//! with the reason. Data export and account deletion walk this list, and a contract test fails
//! when a migration adds a table or column that is not described here.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erasure {
    /// The row goes when its owner's account is deleted.
    DeleteRow,
    /// The value is replaced by a pseudonym (or emptied) and the row kept, e.g. audit history.
    Pseudonymise,
    /// The value is emptied after a retention period, whoever owns it.
    PurgeAfterDays(u32),
    /// Not personal (an id, a time, a status): kept as long as its row.
    NotPersonal,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    /// Included in the customer's data export.
    pub exported: bool,
    pub erasure: Erasure,
}

#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    /// The column that ties a row to the person or customer it is about.
    pub owner_column: &'static str,
    pub columns: &'static [Column],
}

const fn col(name: &'static str, exported: bool, erasure: Erasure) -> Column {
    Column {
        name,
        exported,
        erasure,
    }
}

use Erasure::*;

pub static PERSONAL_TABLES: &[Table] = &[
    Table {
        name: "email_tokens",
        owner_column: "user_id",
        columns: &[
            col("token_hash", false, DeleteRow),
            col("user_id", false, DeleteRow),
            col("purpose", false, NotPersonal),
            col("email", true, DeleteRow),
            col("expires_at", false, NotPersonal),
            col("used_at", false, NotPersonal),
            col("created_at", false, NotPersonal),
        ],
    },
    Table {
        name: "outbox_emails",
        owner_column: "user_id",
        columns: &[
            col("id", false, NotPersonal),
            col("user_id", false, DeleteRow),
            col("recipient", false, DeleteRow),
            col("subject", false, DeleteRow),
            col("text_body", false, DeleteRow),
            col("html_body", false, DeleteRow),
            col("created_at", false, NotPersonal),
        ],
    },
    Table {
        name: "customers",
        owner_column: "id",
        columns: &[
            col("id", true, NotPersonal),
            col("name", true, DeleteRow),
            col("created_at", true, NotPersonal),
        ],
    },
    Table {
        name: "users",
        owner_column: "id",
        columns: &[
            col("id", true, NotPersonal),
            col("email", true, DeleteRow),
            col("email_normalized", false, DeleteRow),
            col("email_verified_at", true, NotPersonal),
            col("display_name", true, DeleteRow),
            col("password_hash", false, DeleteRow),
            col("password_scheme", false, NotPersonal),
            col("staff_role", true, NotPersonal),
            col("age_confirmed_at", true, NotPersonal),
            col("terms_version", true, NotPersonal),
            col("terms_accepted_at", true, NotPersonal),
            col("created_at", true, NotPersonal),
            col("sign_in_failures", false, NotPersonal),
            col("last_sign_in_failure_at", false, NotPersonal),
            col("totp_secret", false, DeleteRow),
            col("totp_pending_secret", false, DeleteRow),
            col("totp_enabled_at", true, NotPersonal),
            col("totp_last_step", false, NotPersonal),
        ],
    },
    Table {
        name: "billing_details",
        owner_column: "customer_id",
        columns: &[
            col("customer_id", true, NotPersonal),
            col("name", true, DeleteRow),
            col("company", true, DeleteRow),
            col("address_line1", true, DeleteRow),
            col("address_line2", true, DeleteRow),
            col("postal_code", true, DeleteRow),
            col("city", true, DeleteRow),
            col("country", true, NotPersonal),
            col("billing_email", true, DeleteRow),
            col("vat_number", true, DeleteRow),
            col("updated_at", true, NotPersonal),
            col("vat_status", true, NotPersonal),
            col("vat_checked_at", true, NotPersonal),
            col("vat_request_date", true, NotPersonal),
            col("vat_request_id", true, NotPersonal),
            // What VIES returned for the number: a business's registered name and address.
            col("vat_registered_name", true, DeleteRow),
            col("vat_registered_address", true, DeleteRow),
            col("vat_check_error", false, NotPersonal),
        ],
    },
    // Financial records: kept for the legal retention period (10 years), then purged.
    Table {
        name: "billing_accounts",
        owner_column: "customer_id",
        columns: &[
            col("customer_id", true, NotPersonal),
            col("method", true, NotPersonal),
            col("currency", true, NotPersonal),
            // Stripe's id for the customer: the key to their data held at Stripe.
            col("stripe_customer_id", true, DeleteRow),
            col("stripe_customer_key", false, NotPersonal),
            // A SetupIntent waiting for a card: Stripe's id, no card data.
            col("open_setup_intent_id", false, NotPersonal),
            col("created_at", true, NotPersonal),
            col("updated_at", false, NotPersonal),
        ],
    },
    Table {
        name: "cards",
        owner_column: "customer_id",
        columns: &[
            col("customer_id", true, NotPersonal),
            col("stripe_payment_method_id", false, DeleteRow),
            col("brand", true, DeleteRow),
            col("last4", true, DeleteRow),
            col("exp_month", true, DeleteRow),
            col("exp_year", true, DeleteRow),
            col("added_at", true, NotPersonal),
        ],
    },
    Table {
        name: "homeservers",
        owner_column: "customer_id",
        columns: &[
            col("id", true, NotPersonal),
            col("customer_id", true, NotPersonal),
            col("name", true, NotPersonal),
            col("region", true, NotPersonal),
            col("state", true, NotPersonal),
            col("suspension_marked_at", true, NotPersonal),
            col("created_at", true, NotPersonal),
            col("updated_at", false, NotPersonal),
            col("port", false, NotPersonal),
            col("last_error", false, NotPersonal),
            // Credentials of the portal's own user on the homeserver, sealed.
            col("service_password", false, DeleteRow),
            col("service_token", false, DeleteRow),
            col("admin_user", true, NotPersonal),
            // Sealed, and emptied once the customer reveals it: never exported.
            col("admin_password", false, DeleteRow),
            col("admin_password_revealed_at", true, NotPersonal),
            col("running_since", true, NotPersonal),
            col("terminate_after", true, NotPersonal),
            col("down_since", true, NotPersonal),
            col("down_alerted_at", true, NotPersonal),
            col("registration", true, NotPersonal),
            col("federation", true, NotPersonal),
            col("guest_access", true, NotPersonal),
            col("settings_version", false, NotPersonal),
            col("settings_applied", false, NotPersonal),
            col("restore_backup_id", false, NotPersonal),
            col("staff_suspended_at", true, NotPersonal),
        ],
    },
    Table {
        // The homeserver's backups (the files are its data, kept by its provisioner and
        // deleted with it).
        name: "homeserver_backups",
        owner_column: "homeserver_id",
        columns: &[
            col("id", true, NotPersonal),
            col("homeserver_id", true, NotPersonal),
            col("created_at", true, NotPersonal),
            col("state", true, NotPersonal),
            col("size_bytes", true, NotPersonal),
            col("error", false, NotPersonal),
        ],
    },
    Table {
        // Whether the homeserver answered each health check.
        name: "homeserver_health",
        owner_column: "homeserver_id",
        columns: &[
            col("homeserver_id", true, NotPersonal),
            col("checked_at", true, NotPersonal),
            col("healthy", true, NotPersonal),
        ],
    },
    Table {
        // What happened to a homeserver's process: starts, exits, restarts, failures.
        name: "homeserver_events",
        owner_column: "homeserver_id",
        columns: &[
            col("id", false, NotPersonal),
            col("homeserver_id", true, NotPersonal),
            col("at", true, NotPersonal),
            col("kind", true, NotPersonal),
            col("detail", true, NotPersonal),
        ],
    },
    Table {
        name: "subscriptions",
        owner_column: "customer_id",
        columns: &[
            col("id", true, NotPersonal),
            col("customer_id", true, NotPersonal),
            col("homeserver_id", true, NotPersonal),
            col("plan_id", true, NotPersonal),
            col("billing_interval", true, NotPersonal),
            col("currency", true, NotPersonal),
            col("method", true, NotPersonal),
            col("status", true, NotPersonal),
            col("tax_key", true, NotPersonal),
            col("tax_rate_bp", true, NotPersonal),
            col("idempotency_key", false, NotPersonal),
            col("stripe_subscription_id", true, NotPersonal),
            col("cancel_at_period_end", true, NotPersonal),
            col("current_period_end", true, NotPersonal),
            col("trial_end", true, NotPersonal),
            col("past_due_since", true, NotPersonal),
            col("canceled_at", true, NotPersonal),
            col("created_at", true, NotPersonal),
            col("updated_at", false, NotPersonal),
            col("unknown_stripe_price", false, NotPersonal),
            col("start_claimed_until", false, NotPersonal),
            col("payment_action_invoice", false, NotPersonal),
            col("payment_action_notified", false, NotPersonal),
        ],
    },
    Table {
        name: "invoices",
        owner_column: "customer_id",
        columns: &[
            col("id", true, NotPersonal),
            col("customer_id", true, NotPersonal),
            col("subscription_id", true, NotPersonal),
            col("method", true, NotPersonal),
            col("stripe_invoice_id", true, NotPersonal),
            col("number", true, NotPersonal),
            col("status", true, NotPersonal),
            col("currency", true, NotPersonal),
            col("subtotal", true, NotPersonal),
            col("tax", true, NotPersonal),
            col("total", true, NotPersonal),
            col("amount_due", true, NotPersonal),
            col("amount_paid", true, NotPersonal),
            col("tax_lines", true, NotPersonal),
            col("period_start", true, NotPersonal),
            col("period_end", true, NotPersonal),
            // Invoices are kept for the legal retention period; the card digits go sooner.
            col("card_last4", true, Pseudonymise),
            col("paid_at", true, NotPersonal),
            col("created_at", true, NotPersonal),
            col("updated_at", false, NotPersonal),
            col("due_at", true, NotPersonal),
            // The billing details as they were when the invoice was recorded: part of the
            // record (an invoice names its buyer), so kept with it after the account goes.
            col("buyer", true, PurgeAfterDays(3650)),
            // The frozen invoice document names its buyer too (the same billing record).
            col("document", true, PurgeAfterDays(3650)),
            col("frozen_at", true, NotPersonal),
            col("totals_mismatch", false, NotPersonal),
            col("issued_email_at", false, NotPersonal),
            col("receipt_email_at", false, NotPersonal),
        ],
    },
    Table {
        // Capability links to an invoice: the invoice ties them to its customer.
        name: "invoice_links",
        owner_column: "invoice_id",
        columns: &[
            col("id", false, NotPersonal),
            col("invoice_id", false, NotPersonal),
            // A hash of a secret, not of a person: useless to anyone without the link.
            col("token_sha256", false, DeleteRow),
            col("created_at", true, NotPersonal),
            // Who made it (a user of the customer): set to NULL when the user goes.
            col("created_by", true, Pseudonymise),
            col("expires_at", true, NotPersonal),
            col("revoked_at", true, NotPersonal),
            // The access record the customer sees (when opened, how often; no address).
            col("last_opened_at", true, NotPersonal),
            col("open_count", true, NotPersonal),
        ],
    },
    Table {
        // The invoice document as a PDF: it names the buyer, like the document it is made of.
        name: "invoice_pdfs",
        owner_column: "invoice_id",
        columns: &[
            col("invoice_id", false, NotPersonal),
            col("pdf", true, PurgeAfterDays(3650)),
            col("sha256", false, NotPersonal),
            col("rendered_at", false, NotPersonal),
        ],
    },
    Table {
        name: "billing_details_history",
        owner_column: "customer_id",
        columns: &[
            col("id", false, NotPersonal),
            col("customer_id", true, NotPersonal),
            col("changed_at", true, NotPersonal),
            col("actor_kind", true, NotPersonal),
            col("actor_id", true, NotPersonal),
            col("field", true, NotPersonal),
            col("old_value", true, PurgeAfterDays(3650)),
            col("new_value", true, PurgeAfterDays(3650)),
        ],
    },
    Table {
        name: "recovery_codes",
        owner_column: "user_id",
        columns: &[
            col("user_id", false, DeleteRow),
            col("code_hash", false, DeleteRow),
            col("used_at", true, NotPersonal),
            col("created_at", true, NotPersonal),
        ],
    },
    Table {
        name: "memberships",
        owner_column: "user_id",
        columns: &[
            col("customer_id", true, NotPersonal),
            col("user_id", true, DeleteRow),
            col("role", true, NotPersonal),
            col("created_at", true, NotPersonal),
        ],
    },
    Table {
        name: "identities",
        owner_column: "user_id",
        columns: &[
            col("provider", true, DeleteRow),
            col("subject", true, DeleteRow),
            col("user_id", true, DeleteRow),
            col("email", true, DeleteRow),
            col("email_verified", true, NotPersonal),
            col("created_at", true, NotPersonal),
        ],
    },
    Table {
        name: "sessions",
        owner_column: "account_id",
        columns: &[
            col("id", false, DeleteRow),
            col("data", false, DeleteRow),
            col("expires_at", true, NotPersonal),
            col("account_id", true, DeleteRow),
            col("created_at", true, NotPersonal),
            col("last_seen_at", true, NotPersonal),
            col("client_ip", true, DeleteRow),
            col("user_agent", true, DeleteRow),
            col("signed_in_at", true, NotPersonal),
        ],
    },
    Table {
        name: "audit_log",
        owner_column: "customer_id",
        columns: &[
            col("id", true, NotPersonal),
            col("occurred_at", true, NotPersonal),
            col("actor_kind", true, NotPersonal),
            col("actor_id", true, NotPersonal),
            col("customer_id", true, NotPersonal),
            col("action", true, NotPersonal),
            col("target_kind", true, NotPersonal),
            col("target_id", true, NotPersonal),
            col("request_id", false, NotPersonal),
            col("client_ip", true, PurgeAfterDays(30)),
            col("details", true, NotPersonal),
            col("personal", true, Pseudonymise),
        ],
    },
];

/// Tables that hold no personal data, and why.
pub static NON_PERSONAL_TABLES: &[(&str, &str)] = &[
    (
        "jobs",
        "work items only: payloads carry ids, never personal values, and rows are deleted when done",
    ),
    ("job_schedule", "the last time slot of each periodic job"),
    (
        "leases",
        "which portal replica holds a named duty (the homeserver supervisor) and until when",
    ),
    (
        "server_names",
        "homeserver names and the customer id that reserved them; names are public DNS labels, kept forever so none is reused",
    ),
    (
        "stripe_events",
        "ids and types of Stripe webhook events, kept to recognise a second delivery",
    ),
    (
        "stripe_tax_rates",
        "the Stripe tax rate made for each tax decision (country and rate)",
    ),
    (
        "invoice_number_series",
        "the last number issued in each invoice number series",
    ),
    (
        "oauth_states",
        "hashes of random sign-in flow states, kept minutes to refuse replays",
    ),
];

pub fn table(name: &str) -> Option<&'static Table> {
    PERSONAL_TABLES.iter().find(|t| t.name == name)
}

/// Problems between the registry and an actual schema (table name → its columns).
pub fn check_against_schema(schema: &[(String, Vec<String>)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (table_name, columns) in schema {
        let personal = table(table_name);
        let non_personal = NON_PERSONAL_TABLES.iter().any(|(n, _)| n == table_name);
        match (personal, non_personal) {
            (None, false) => problems.push(format!("table {table_name} is not in the registry")),
            (Some(_), true) => problems.push(format!("table {table_name} is listed twice")),
            (None, true) => {}
            (Some(entry), false) => {
                for c in columns {
                    if !entry.columns.iter().any(|rc| rc.name == c) {
                        problems.push(format!("column {table_name}.{c} is not in the registry"));
                    }
                }
                for rc in entry.columns {
                    if !columns.iter().any(|c| c == rc.name) {
                        problems.push(format!(
                            "registry lists {table_name}.{} which does not exist",
                            rc.name
                        ));
                    }
                }
                if !columns.iter().any(|c| c == entry.owner_column) {
                    problems.push(format!(
                        "owner column {table_name}.{} does not exist",
                        entry.owner_column
                    ));
                }
            }
        }
    }
    for t in PERSONAL_TABLES {
        if !schema.iter().any(|(n, _)| n == t.name) {
            problems.push(format!(
                "registry lists table {} which does not exist",
                t.name
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_forgotten_table_and_column() {
        let schema = vec![
            ("jobs".to_string(), vec!["id".to_string()]),
            ("mystery".to_string(), vec!["id".to_string()]),
        ];
        let problems = check_against_schema(&schema);
        assert!(problems
            .iter()
            .any(|p| p.contains("table mystery is not in the registry")));
        assert!(problems
            .iter()
            .any(|p| p.contains("registry lists table sessions")));

        let mut sessions: Vec<String> = table("sessions")
            .unwrap()
            .columns
            .iter()
            .map(|c| c.name.to_string())
            .collect();
        sessions.push("favourite_colour".into());
        let problems = check_against_schema(&[("sessions".into(), sessions)]);
        assert!(problems
            .iter()
            .any(|p| p.contains("sessions.favourite_colour")));
    }
}
