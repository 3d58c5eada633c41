//! The mailer against a real SMTP server (aiosmtpd, started per test), on both databases.

use domain::{
    clock::ManualClock,
    db::{Backend, Db},
    jobs::{self, Runner},
    mail::{self, Mailer, OutgoingEmail},
    on_db,
    random::SeededRandom,
};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
};
use test_support::TestDb;
use time::macros::datetime;

/// aiosmtpd storing what it receives in a maildir; killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl SmtpServer {
    /// end2end/smtp-server.py: aiosmtpd with a Mailbox handler, on a port it chooses and
    /// names (no other process can take the port between choosing and listening).
    fn start() -> SmtpServer {
        let python = std::env::var("PORTAL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let maildir = std::env::temp_dir().join(format!(
            "portal-maildir-{}",
            domain::random::token(&domain::OsRandom, 8)
        ));
        let mut command = Command::new(&python);
        command
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../end2end/smtp-server.py"
            ))
            .arg(&maildir)
            .stderr(Stdio::inherit());
        let (child, ports) = test_support::spawn_listening(
            command,
            &format!(
                "end2end/smtp-server.py with {python} (scripts/setup.sh --test installs aiosmtpd)"
            ),
        );
        SmtpServer {
            child,
            port: ports[0],
            maildir,
        }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn messages(&self) -> Vec<String> {
        read_dir_texts(&self.maildir.join("new"))
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

fn read_dir_texts(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect()
}

fn email(to: &str) -> OutgoingEmail {
    OutgoingEmail {
        to: to.into(),
        user_id: None,
        subject: "Verify your email address".into(),
        text: "Open https://portal.example/verify/abc to verify.".into(),
        html: "<p><a href=\"https://portal.example/verify/abc\">Verify</a></p>".into(),
    }
}

fn runner(db: &Db, clock: &ManualClock, mailer: Mailer) -> Runner {
    let handler_db = db.clone();
    Runner::new(
        db.clone(),
        Arc::new(clock.clone()),
        Arc::new(SeededRandom::new(9)),
    )
    .handle(mail::SEND_JOB, move |payload| {
        let (mailer, db) = (mailer.clone(), handler_db.clone());
        async move { mailer.deliver(&db, mail::outbox_id(&payload)?).await }
    })
}

async fn outbox_len(db: &Db) -> i64 {
    on_db!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM outbox_emails").fetch_one(pool).await.unwrap())
}

async fn queued_mail_is_delivered_over_smtp_and_survives_a_failure(backend: Backend) {
    let smtp = SmtpServer::start();
    let test_db = TestDb::new(backend).await;
    let db = test_db.db.clone();
    let clock = ManualClock::new(datetime!(2026-11-22 12:00 UTC));
    let random = SeededRandom::new(1);

    // Rolled back: nothing is queued, nothing is sent.
    let mut tx = db.begin().await.unwrap();
    mail::enqueue(&mut tx, &email("ghost@example.com"), &clock, &random)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(outbox_len(&db).await, 0);

    let mut tx = db.begin().await.unwrap();
    mail::enqueue(&mut tx, &email("alice@example.com"), &clock, &random)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The SMTP server is unreachable at first: the job fails and the message waits. The port
    // is the local end of a connection held open meanwhile: nothing listens there (a connection
    // to it is refused), and no server that lets the system choose its port can be given it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let held = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let closed = held.local_addr().unwrap().port();
    let down = runner(
        &db,
        &clock,
        Mailer::smtp(
            &format!("smtp://127.0.0.1:{closed}"),
            "Portal <noreply@portal.example>",
        )
        .unwrap(),
    );
    assert_eq!(down.run_due().await.unwrap(), 1);
    assert_eq!(outbox_len(&db).await, 1, "kept for the retry");
    assert_eq!(jobs::counts(&db).await.unwrap().queued, 1);
    drop((held, listener));

    clock.advance(time::Duration::minutes(1));
    let up = runner(
        &db,
        &clock,
        Mailer::smtp(&smtp.url(), "Portal <noreply@portal.example>").unwrap(),
    );
    assert_eq!(up.run_due().await.unwrap(), 1);
    assert_eq!(outbox_len(&db).await, 0, "sent and removed");
    assert_eq!(jobs::counts(&db).await.unwrap().queued, 0);

    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "exactly one message arrived");
    let m = &messages[0];
    assert!(m.contains("Subject: Verify your email address"), "{m}");
    assert!(m.contains("To: alice@example.com"), "{m}");
    assert!(m.contains("From: Portal <noreply@portal.example>"), "{m}");
    assert!(
        m.contains("multipart/alternative"),
        "text and HTML parts: {m}"
    );
    assert!(m.contains("https://portal.example/verify/abc"));
    test_db.cleanup().await;
}

#[tokio::test]
async fn sqlite_queued_mail_is_delivered_over_smtp_and_survives_a_failure() {
    queued_mail_is_delivered_over_smtp_and_survives_a_failure(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_queued_mail_is_delivered_over_smtp_and_survives_a_failure() {
    queued_mail_is_delivered_over_smtp_and_survives_a_failure(Backend::Postgres).await;
}

#[tokio::test]
async fn without_smtp_mail_goes_to_eml_files() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let db = test_db.db.clone();
    let clock = ManualClock::new(datetime!(2026-11-22 12:00 UTC));
    let dir = std::env::temp_dir().join(format!(
        "portal-outbox-{}",
        domain::random::token(&domain::OsRandom, 6)
    ));
    let mut tx = db.begin().await.unwrap();
    let id = mail::enqueue(
        &mut tx,
        &email("bob@example.com"),
        &clock,
        &SeededRandom::new(2),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let files = runner(
        &db,
        &clock,
        Mailer::files(dir.clone(), "Portal <noreply@portal.example>").unwrap(),
    );
    assert_eq!(files.run_due().await.unwrap(), 1);
    let eml = std::fs::read_to_string(dir.join(format!("{id}.eml")))
        .expect("an .eml file named by the message id");
    assert!(
        eml.contains("To: bob@example.com") && eml.contains("Subject: Verify your email address")
    );
    assert_eq!(outbox_len(&db).await, 0);
    std::fs::remove_dir_all(dir).unwrap();
    test_db.cleanup().await;
}
