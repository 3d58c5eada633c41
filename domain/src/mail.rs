//! Email, the one mailer every feature uses. A message is written to `outbox_emails` in the
//! caller's transaction together with an `email.send` job, so a restart loses none and a
//! rolled-back change sends nothing; the job delivers it (SMTP through lettre, or, in the
//! embedded default, an .eml file in the data directory's outbox) with the queue's retries,
//! and deletes it.

use crate::{
    clock::Clock,
    db::{Db, Tx},
    jobs::{self, NewJob},
    on_db, on_tx,
    random::{new_id, Random},
};
use lettre::{
    message::{Mailbox, MultiPart},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use std::{path::PathBuf, time::Duration};
use uuid::Uuid;

pub const SEND_JOB: &str = "email.send";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: String,
    /// Whose email this is, so that erasing the account erases unsent mail too.
    pub user_id: Option<Uuid>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Queues `email` inside the caller's transaction.
pub async fn enqueue(
    tx: &mut Tx,
    email: &OutgoingEmail,
    clock: &dyn Clock,
    random: &dyn Random,
) -> Result<Uuid, sqlx::Error> {
    let now = clock.now_ms();
    let id = new_id(now, random);
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO outbox_emails (id, user_id, recipient, subject, text_body, html_body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(email.user_id)
    .bind(&email.to)
    .bind(&email.subject)
    .bind(&email.text)
    .bind(&email.html)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ()))?;
    let job = NewJob::now(SEND_JOB, serde_json::json!({ "outbox_id": id }), clock);
    jobs::enqueue(tx, job, clock, random).await?;
    Ok(id)
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct OutboxRow {
    recipient: String,
    subject: String,
    text_body: String,
    html_body: String,
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Files(_) => "files",
        };
        f.debug_struct("Mailer")
            .field("transport", &kind)
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl Mailer {
    /// SMTP from a URL: `smtp://host:25` (plain, for local relays and tests),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465`.
    pub fn smtp(url: &str, from: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("PORTAL_SMTP_URL: {e}"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        Ok(Self {
            transport: Transport::Smtp(transport),
            from: parse_from(from)?,
        })
    }

    /// Writes each message as an .eml file into `dir` (the embedded default).
    pub fn files(dir: PathBuf, from: &str) -> Result<Self, String> {
        Ok(Self {
            transport: Transport::Files(dir),
            from: parse_from(from)?,
        })
    }

    /// Delivers the queued email `outbox_id` and removes it from the outbox. An id that is no
    /// longer there was delivered already.
    pub async fn deliver(&self, db: &Db, outbox_id: Uuid) -> Result<(), String> {
        let row = on_db!(db, pool => sqlx::query_as::<_, OutboxRow>(
            "SELECT recipient, subject, text_body, html_body FROM outbox_emails WHERE id = $1",
        )
        .bind(outbox_id)
        .fetch_optional(pool)
        .await)
        .map_err(|e| e.to_string())?;
        let Some(row) = row else { return Ok(()) };
        let to: Mailbox = row
            .recipient
            .parse()
            .map_err(|e| format!("recipient address: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(row.subject)
            .multipart(MultiPart::alternative_plain_html(
                row.text_body,
                row.html_body,
            ))
            .map_err(|e| format!("building the message: {e}"))?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await.map_err(|e| format!("SMTP: {e}"))?;
                tracing::info!(%outbox_id, "email sent");
            }
            Transport::Files(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                let path = dir.join(format!("{outbox_id}.eml"));
                tokio::fs::write(&path, message.formatted())
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                tracing::info!(%outbox_id, path = %path.display(), "email written to the outbox");
            }
        }
        on_db!(db, pool => sqlx::query("DELETE FROM outbox_emails WHERE id = $1").bind(outbox_id).execute(pool).await.map(|_| ()))
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

fn parse_from(from: &str) -> Result<Mailbox, String> {
    from.parse()
        .map_err(|e| format!("PORTAL_MAIL_FROM {from:?}: {e}"))
}

/// The `outbox_id` of an `email.send` job's payload.
pub fn outbox_id(payload: &serde_json::Value) -> Result<Uuid, String> {
    payload["outbox_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "email.send job without an outbox_id".to_string())
}
