//! Test support shared by the domain's and the server's tests: a fresh database per test on
//! either backend, and test servers that say which port they chose. Only dev-dependencies name
//! this crate, so nothing that creates or drops databases is compiled into the portal. PostgreSQL tests use PORTAL_TEST_POSTGRES_URL (default: the local server as
//! `postgres`); they fail, never skip, when it cannot be reached.

use domain::db::{Backend, Db};

pub struct TestDb {
    pub db: Db,
    pub url: String,
    cleanup: Cleanup,
}

pub enum Cleanup {
    File(std::path::PathBuf),
    Database { admin_url: String, name: String },
}

fn unique_name() -> String {
    format!(
        "portal_test_{}",
        domain::random::token(&domain::random::OsRandom, 8)
    )
}

pub fn postgres_admin_url() -> String {
    std::env::var("PORTAL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let (url, cleanup) = Self::fresh_url(backend).await;
        let db = Db::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connect to {backend:?} test database: {e}"));
        db.migrate().await.expect("migrations apply");
        TestDb { db, url, cleanup }
    }

    /// A URL of a new, empty database (not migrated), for tests that start a whole server.
    pub async fn fresh_url(backend: Backend) -> (String, Cleanup) {
        let name = unique_name();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir).expect("temp dir");
                (
                    format!("sqlite://{}/portal.sqlite3", dir.display()),
                    Cleanup::File(dir),
                )
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let admin = Db::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL at {admin_url} is required for the PostgreSQL tests (scripts/postgres.sh sets it up): {e}")
                });
                if let Db::Postgres(pool) = &admin {
                    sqlx::query(&format!("CREATE DATABASE {name}"))
                        .execute(pool)
                        .await
                        .expect("create test database");
                }
                admin.close().await;
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .unwrap_or(&admin_url);
                (
                    format!("{base}/{name}"),
                    Cleanup::Database { admin_url, name },
                )
            }
        }
    }

    /// Drops the database (call at the end of a test; a failed test leaves it for inspection).
    pub async fn cleanup(self) {
        self.db.close().await;
        self.cleanup.run().await;
    }
}

impl Cleanup {
    pub async fn run(self) {
        match self {
            Cleanup::File(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database { admin_url, name } => {
                if let Ok(Db::Postgres(pool)) = Db::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&pool)
                        .await;
                    pool.close().await;
                }
            }
        }
    }
}

/// Defines each listed async contract test `fn name(db: Db)` once per backend.
#[macro_export]
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let test_db = $crate::TestDb::new(::domain::db::Backend::Sqlite).await;
                super::$name(test_db.db.clone()).await;
                test_db.cleanup().await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                let test_db = $crate::TestDb::new(::domain::db::Backend::Postgres).await;
                super::$name(test_db.db.clone()).await;
                test_db.cleanup().await;
            })*
        }
    };
}

/// Starts a test server that listens on a port it chose itself (so that no other process can
/// take the port between choosing and listening) and waits for the line on its stdout that
/// names it, `… listening on 127.0.0.1:PORT …`. Returns the child (stdout piped, the rest of its
/// output passed on to stderr) and every port named on that line, in order.
pub fn spawn_listening(
    mut command: std::process::Command,
    what: &str,
) -> (std::process::Child, Vec<u16>) {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.is_some() && line.contains("listening on 127.0.0.1:") {
                let _ = tx.take().unwrap().send(line);
            } else {
                eprintln!("{line}");
            }
        }
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(line) => {
            let ports = line
                .split("127.0.0.1:")
                .skip(1)
                .map(|rest| {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    digits
                        .parse()
                        .unwrap_or_else(|_| panic!("{what}: no port in {line:?}"))
                })
                .collect();
            (child, ports)
        }
        Err(_) => {
            let _ = child.kill();
            let status = child.wait();
            panic!("{what} did not say where it listens (exit: {status:?})");
        }
    }
}
