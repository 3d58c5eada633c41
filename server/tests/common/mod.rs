//! spawn_app: a whole portal per test, on its own fresh database and a port chosen by the OS.

#![allow(dead_code)]

pub mod browser;
pub mod stripe;
pub mod vies;

use clap::Parser;
use domain::{db::Backend, ManualClock, SeededRandom};
use std::{net::SocketAddr, path::PathBuf, sync::Arc};
use test_support::TestDb;
use time::macros::datetime;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub state: server::state::AppState,
    runner: domain::jobs::Runner,
    pub data_dir: PathBuf,
    /// The database, for a second portal process on the same data (a replica).
    pub database_url: String,
    cleanup: Option<test_support::Cleanup>,
    /// The homeserver supervisor of a portal that runs Synapse: how to stop it (which stops
    /// its Synapse processes), and its task.
    supervisor: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
}

/// The Synapse the homeserver tests run (scripts/setup.sh installs it; scripts/env.sh names it).
pub fn synapse_python() -> String {
    match std::env::var("PORTAL_SYNAPSE_PYTHON") {
        Ok(python) if std::path::Path::new(&python).exists() => python,
        _ => panic!(
            "the homeserver tests run real Synapse: set PORTAL_SYNAPSE_PYTHON \
             (scripts/setup.sh installs it, scripts/env.sh sets it)"
        ),
    }
}

/// A portal whose homeservers really run: Synapse from PORTAL_SYNAPSE_PYTHON, the supervisor
/// running, ports from a window of its own (tests run in parallel).
pub async fn spawn_app_with_homeservers(backend: Backend, extra: &[&str]) -> TestApp {
    let first = 21000 + 50 * (domain::random::Random::below(&domain::OsRandom, 600) as u16);
    let ports = format!("{first}-{}", first + 49);
    let python = synapse_python();
    let mut args = vec![
        "--synapse-python",
        python.as_str(),
        "--homeserver-ports",
        ports.as_str(),
    ];
    args.extend(extra);
    spawn(backend, None, &args, true).await
}

/// A site root with a manifest and the stylesheet, so the server starts without a WASM build.
fn fixture_site(dir: &std::path::Path) -> PathBuf {
    let site = dir.join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    std::fs::write(
        site.join("pkg/manifest.json"),
        r#"{"js":"portal.test.js","wasm":"portal.test.wasm","css":"portal.test.css"}"#,
    )
    .unwrap();
    std::fs::write(
        site.join("pkg/portal.test.css"),
        "body { color: black; }\n".repeat(200),
    )
    .unwrap();
    site
}

/// One runtime, alive for the whole test process, serves every test's portal, as the binary's
/// one runtime does. (Serving from each test's own runtime, which ends with the test, made
/// renders hang now and then while other tests were finishing.)
pub fn server_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("the test server runtime starts")
    })
}

/// Every log line of the portals this test process ran (debug for the portal's own crates, the
/// request log and the Stripe client), so tests can check what never reaches a log. With PORTAL_TEST_LOG set
/// (e.g. "warn"), the log goes to the test's output instead.
static LOGS: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();

#[derive(Clone)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    if let Ok(filter) = std::env::var("PORTAL_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
        return;
    }
    let buffer = LOGS.get_or_init(Default::default).clone();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,domain=debug,server=debug,app=debug,stripe=debug,tower_http=debug,\
             tower_sessions=debug,leptos_axum=debug,sqlx=warn",
        ))
        .with_ansi(false)
        .with_writer(move || LogBuffer(buffer.clone()))
        .try_init();
}

/// The log of every portal this process ran so far (empty when PORTAL_TEST_LOG is set).
pub fn logs() -> String {
    LOGS.get()
        .map(|b| String::from_utf8_lossy(&b.lock().unwrap()).into_owned())
        .unwrap_or_default()
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, None).await
}

/// As [`spawn_app`], with another public URL (e.g. https, as behind a TLS proxy).
pub async fn spawn_app_with(backend: Backend, public_url: Option<&str>) -> TestApp {
    spawn_app_args(backend, public_url, &[]).await
}

/// As [`spawn_app_with`], with more command-line settings.
pub async fn spawn_app_args(backend: Backend, public_url: Option<&str>, extra: &[&str]) -> TestApp {
    spawn(backend, public_url, extra, false).await
}

async fn spawn(
    backend: Backend,
    public_url: Option<&str>,
    extra: &[&str],
    supervise: bool,
) -> TestApp {
    init_logs();
    let (url, cleanup) = TestDb::fresh_url(backend).await;
    let data_dir = std::env::temp_dir().join(format!(
        "portal-it-{}",
        domain::random::token(&domain::OsRandom, 8)
    ));
    std::fs::create_dir_all(&data_dir).unwrap();
    let site = fixture_site(&data_dir);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut args: Vec<String> = vec![
        "server".into(),
        "--site-addr".into(),
        addr.to_string(),
        "--data-dir".into(),
        data_dir.to_str().unwrap().into(),
        "--site-root".into(),
        site.to_str().unwrap().into(),
        "--database-url".into(),
        url.clone(),
        "--public-url".into(),
        public_url
            .map(str::to_string)
            .unwrap_or_else(|| format!("http://{addr}")),
    ];
    // No test reaches the EU's VIES service: a test that checks VAT numbers names its own
    // stand-in (end2end/vies-server.py); the others get a closed port, so a check finds VIES
    // unavailable at once.
    if !extra.contains(&"--vies-url") {
        args.extend(["--vies-url".into(), "http://127.0.0.1:9".into()]);
    }
    // Homeservers run only in the tests made for them (spawn_app_with_homeservers): at most a
    // few Synapse processes at once. Elsewhere a paid homeserver's provisioning fails at once,
    // as on a machine without Synapse, and it stays waiting.
    if !extra.contains(&"--synapse-python") {
        args.extend([
            "--synapse-python".into(),
            data_dir
                .join("no-synapse-here/python")
                .to_str()
                .unwrap()
                .into(),
        ]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let cli = server::config::Cli::try_parse_from(args).unwrap();
    let clock = ManualClock::new(datetime!(2026-11-22 12:00 UTC));
    let server_clock = clock.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (state, runner, supervisor) = server_runtime()
        .spawn(async move {
            let built = server::build(
                cli.config,
                Arc::new(server_clock),
                Arc::new(SeededRandom::new(42)),
            )
            .await
            .expect("server builds");
            let app = built
                .router
                .into_make_service_with_connect_info::<SocketAddr>();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            let supervisor = supervise.then(|| {
                let mut stop = stop_rx;
                tokio::spawn(built.supervisor.run_until(async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                }))
            });
            (built.state, built.runner, supervisor)
        })
        .await
        .unwrap();
    TestApp {
        address: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        clock,
        state,
        runner,
        data_dir,
        database_url: url,
        cleanup: Some(cleanup),
        supervisor: supervisor.map(|task| (stop_tx, task)),
    }
}

/// Serves `router` (already wrapped in the portal's middleware) on a port of its own.
pub async fn serve(router: axum::Router) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    server_runtime().spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        axum::serve(listener, app).await.unwrap()
    });
    format!("http://{addr}")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// How many Stripe webhook events of `kind` the portal has received.
    pub async fn stripe_events(&self, kind: &str) -> i64 {
        domain::on_db!(&self.state.portal.db, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM stripe_events WHERE event_type = $1"
        )
        .bind(kind)
        .fetch_one(pool)
        .await
        .unwrap())
    }

    /// Waits (15 s at most) until the portal has received `count` Stripe events of `kind`:
    /// Stripe, and the test server, send them after answering the call that caused them.
    pub async fn wait_for_stripe_events(&self, kind: &str, count: i64) {
        for _ in 0..150 {
            if self.stripe_events(kind).await >= count {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the portal did not receive {count} {kind} events");
    }

    /// Runs the jobs that are due now, periodic ones included (the test server runs none by
    /// itself); returns how many.
    pub async fn run_jobs(&self) -> usize {
        let runner = self.runner.clone();
        server_runtime()
            .spawn(async move {
                runner.schedule_periodic().await.unwrap();
                runner.run_due().await.unwrap()
            })
            .await
            .unwrap()
    }

    /// The text part of a delivered mail (an .eml of the test server's outbox) to `to` with
    /// `subject`, or else of a queued one.
    pub async fn mail_text(&self, to: &str, subject: &str) -> Option<String> {
        if let Ok(entries) = std::fs::read_dir(self.data_dir.join("outbox")) {
            for entry in entries.flatten() {
                let raw = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let header = |name: &str| {
                    raw.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(str::trim)
                        .unwrap_or_default()
                        .to_string()
                };
                if header("To:") == to && header("Subject:") == subject {
                    return Some(eml_text(&raw));
                }
            }
        }
        self.queued_mail(to, subject).await
    }

    /// The text part of the newest queued (not yet delivered) mail to `to` with `subject`.
    pub async fn queued_mail(&self, to: &str, subject: &str) -> Option<String> {
        domain::on_db!(&self.state.portal.db, pool => sqlx::query_scalar(
            "SELECT text_body FROM outbox_emails WHERE recipient = $1 AND subject = $2 \
             ORDER BY created_at DESC LIMIT 1"
        )
        .bind(to)
        .bind(subject)
        .fetch_optional(pool)
        .await
        .unwrap())
    }

    /// Subjects of the mail to `to`: delivered (the .eml outbox of the test server) and queued.
    pub async fn mail_subjects(&self, to: &str) -> Vec<String> {
        let mut subjects = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.data_dir.join("outbox")) {
            for entry in entries.flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let header = |name: &str| {
                    text.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(str::trim)
                        .unwrap_or_default()
                        .to_string()
                };
                if header("To:") == to {
                    subjects.push(header("Subject:"));
                }
            }
        }
        let queued: Vec<String> = domain::on_db!(&self.state.portal.db, pool => sqlx::query_scalar(
            "SELECT subject FROM outbox_emails WHERE recipient = $1"
        )
        .bind(to)
        .fetch_all(pool)
        .await
        .unwrap());
        subjects.extend(queued);
        subjects
    }

    /// Stops the supervisor, which stops the Synapse processes it started.
    pub async fn stop_homeservers(&mut self) {
        if let Some((stop, task)) = self.supervisor.take() {
            let _ = stop.send(true);
            let _ = task.await;
        }
    }

    pub async fn cleanup(mut self) {
        self.stop_homeservers().await;
        self.state.portal.db.close().await;
        if let Some(c) = self.cleanup.take() {
            c.run().await;
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Defines each listed async test `fn name(app: &TestApp)` once per backend.
#[macro_export]
macro_rules! app_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let app = $crate::common::spawn_app(domain::db::Backend::Sqlite).await;
                super::$name(&app).await;
                app.cleanup().await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                let app = $crate::common::spawn_app(domain::db::Backend::Postgres).await;
                super::$name(&app).await;
                app.cleanup().await;
            })*
        }
    };
}

/// Defines each listed async test `fn name(backend: Backend)` once per backend (for tests that
/// start their portal themselves, e.g. with a Stripe server).
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(domain::db::Backend::Sqlite).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name(domain::db::Backend::Postgres).await;
            })*
        }
    };
}

/// The text/plain part of an .eml the portal wrote, decoded (quoted-printable or base64).
fn eml_text(raw: &str) -> String {
    use base64::Engine;
    let raw = raw.replace("\r\n", "\n");
    let Some(part) = raw.split("Content-Type: text/plain").nth(1) else {
        return String::new();
    };
    let (headers, body) = part.split_once("\n\n").unwrap_or((part, ""));
    let body = body.split("\n--").next().unwrap_or_default();
    if headers.contains("quoted-printable") {
        let joined = body.replace("=\n", "");
        let mut bytes = Vec::new();
        let mut rest = joined.as_bytes();
        while let Some((&b, tail)) = rest.split_first() {
            match (b, tail) {
                (b'=', [h, l, more @ ..]) => {
                    let hex = [*h, *l];
                    match u8::from_str_radix(std::str::from_utf8(&hex).unwrap_or("zz"), 16) {
                        Ok(v) => {
                            bytes.push(v);
                            rest = more;
                        }
                        Err(_) => {
                            bytes.push(b);
                            rest = tail;
                        }
                    }
                }
                _ => {
                    bytes.push(b);
                    rest = tail;
                }
            }
        }
        String::from_utf8_lossy(&bytes).to_string()
    } else if headers.contains("base64") {
        let compact: String = body.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).to_string()
    } else {
        body.to_string()
    }
}
