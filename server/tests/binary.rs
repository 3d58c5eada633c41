//! The server binary as an operator runs it: help, refusal without secrets in production,
//! migrations, start-up, JSON logs with request ids, graceful shutdown on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_server");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portal-bin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("site/pkg")).unwrap();
    std::fs::write(
        dir.join("site/pkg/manifest.json"),
        r#"{"js":"a.js","wasm":"a.wasm","css":"a.css"}"#,
    )
    .unwrap();
    dir
}

fn server(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORTAL_DATA_DIR", dir.join("data"))
        .env("LEPTOS_SITE_ROOT", dir.join("site"));
    cmd
}

#[test]
fn help_documents_the_configuration() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for var in [
        "LEPTOS_SITE_ADDR",
        "PORTAL_DATA_DIR",
        "DATABASE_URL",
        "PORTAL_PUBLIC_URL",
        "PORTAL_ENV",
        "PORTAL_SESSION_KEY",
        "PORTAL_PASSWORD_PEPPER",
        "PORTAL_LOG_FORMAT",
        "PORTAL_PLANS_FILE",
        "PORTAL_SECURITY_CONTACT",
        "PORTAL_CONFIG_FILE",
        "PORTAL_SMTP_URL",
        "PORTAL_MAIL_FROM",
        "PORTAL_TOTP_KEYS",
        "PORTAL_BCRYPT_COST",
        "PORTAL_METRICS_TOKEN",
    ] {
        assert!(help.contains(var), "--help mentions {var}");
    }
}

#[test]
fn production_refuses_to_start_without_secrets() {
    let dir = temp_dir("prod");
    let out = server(&dir)
        .env("PORTAL_ENV", "production")
        .env("PORTAL_PUBLIC_URL", "https://portal.example")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PORTAL_SESSION_KEY is not set"), "{stderr}");
    assert!(
        !dir.join("data/secrets").exists(),
        "nothing generated in production"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Production with every secret configured.
fn production_server(dir: &Path) -> Command {
    use base64::{engine::general_purpose::STANDARD, Engine};
    let mut cmd = server(dir);
    cmd.env("PORTAL_ENV", "production")
        .env("PORTAL_PUBLIC_URL", "https://portal.example")
        .env("PORTAL_SESSION_KEY", STANDARD.encode([7u8; 64]))
        .env("PORTAL_PASSWORD_PEPPER", STANDARD.encode([8u8; 32]))
        .env(
            "PORTAL_TOTP_KEYS",
            format!("k1:{}", STANDARD.encode([9u8; 32])),
        )
        .env("PORTAL_SELLER_NAME", "Example Hosting Oy")
        .env(
            "PORTAL_SELLER_ADDRESS",
            "Mannerheimintie 1; 00100 Helsinki; Finland",
        )
        .env("PORTAL_SELLER_VAT_NUMBER", "FI12345671")
        .env("PORTAL_SELLER_COMPANY_NUMBER", "1234567-1")
        .env("PORTAL_SELLER_IBAN", "FI2112345600000785");
    cmd
}

#[test]
fn production_refuses_to_start_without_the_sellers_invoice_details() {
    let dir = temp_dir("prod-seller");
    let billing = ["billing", "manual", "--customer", "nobody@example.com"];
    let out = production_server(&dir)
        .env("PORTAL_SMTP_URL", "smtp://127.0.0.1:25")
        .env_remove("PORTAL_SELLER_NAME")
        .env_remove("PORTAL_SELLER_IBAN")
        .args(billing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("set PORTAL_SELLER_NAME, PORTAL_SELLER_IBAN"),
        "{stderr}"
    );
    // An IBAN with a wrong check digit is refused, in any environment.
    let out = production_server(&dir)
        .env("PORTAL_SMTP_URL", "smtp://127.0.0.1:25")
        .env("PORTAL_SELLER_IBAN", "FI2112345600000786")
        .args(billing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PORTAL_SELLER_IBAN is not a valid IBAN"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn production_refuses_to_start_without_smtp() {
    let dir = temp_dir("prod-smtp");
    // The billing command builds the whole portal, as serving does, and then ends.
    let billing = ["billing", "manual", "--customer", "nobody@example.com"];
    let out = production_server(&dir).args(billing).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PORTAL_SMTP_URL is not set"), "{stderr}");
    assert!(
        !dir.join("data/outbox").exists(),
        "no mail written to files"
    );

    // With SMTP configured it gets past the check (and then finds no such customer).
    let out = production_server(&dir)
        .env("PORTAL_SMTP_URL", "smtp://127.0.0.1:25")
        .args(billing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("PORTAL_SMTP_URL"), "{stderr}");
    assert!(stderr.contains("no customer whose owner"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn migrate_creates_the_embedded_database() {
    let dir = temp_dir("migrate");
    let out = server(&dir).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("data/portal.sqlite3").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn config_file_supplies_what_the_environment_does_not() {
    let dir = temp_dir("file");
    let file = dir.join("portal.toml");
    std::fs::write(
        &file,
        "PORTAL_ENV = \"production\"\nPORTAL_PUBLIC_URL = \"https://portal.example\"\n",
    )
    .unwrap();
    let out = server(&dir)
        .env("PORTAL_CONFIG_FILE", &file)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "production from the file, so secrets are required"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("PORTAL_SESSION_KEY is not set"));
    let out = server(&dir)
        .env("PORTAL_CONFIG_FILE", &file)
        .env("PORTAL_ENV", "development")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(out.status.success(), "the environment wins over the file");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn serves_logs_json_with_request_ids_and_stops_on_sigterm() {
    let dir = temp_dir("serve");
    // Port 0: the server listens on a port the system chooses and logs which.
    let mut child = server(&dir)
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("PORTAL_LOG_FORMAT", "json")
        .env("RUST_LOG", "info,tower_http=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let next_line = |want: &dyn Fn(&serde_json::Value) -> bool| -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines_rx
                .recv_timeout(left)
                .expect("expected log line before the deadline");
            let json: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            if want(&json) {
                return json;
            }
        }
    };
    let ready = next_line(&|j| j["fields"]["message"] == "portal ready");
    let addr: std::net::SocketAddr = ready["fields"]["addr"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("the address it listens on: {ready}"));
    assert_ne!(addr.port(), 0, "{ready}");
    assert_eq!(
        ready["fields"]["public_url"],
        format!("http://{addr}").as_str(),
        "{ready}"
    );

    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    use std::io::{Read, Write};
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let request_id = response
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("response names its request id")
        .trim()
        .to_string();
    let logged = next_line(&|j| j["span"]["request_id"].as_str().is_some());
    assert_eq!(
        logged["span"]["request_id"],
        request_id.as_str(),
        "{logged}"
    );

    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.join("data/secrets/password_pepper"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    next_line(&|j| j["fields"]["message"] == "portal stopped");
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful exit: {exit:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn manual_billing_commands_explain_what_is_wrong() {
    let dir = temp_dir("billing");
    let out = server(&dir)
        .args(["billing", "manual", "--customer", "nobody@example.com"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no customer whose owner has the address nobody@example.com"),
        "{err}"
    );
    let out = server(&dir)
        .args([
            "billing",
            "mark-paid",
            "--invoice",
            "0190a0a0-0000-7000-8000-000000000000",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("no invoice 0190a0a0-0000-7000-8000-000000000000"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_kubernetes_region_starts_only_with_a_kubeconfig_it_can_read() {
    let dir = temp_dir("kubernetes");
    let kubeconfig = dir.join("eu.kubeconfig");
    let regions = dir.join("regions.toml");
    std::fs::write(
        &regions,
        format!(
            "[[region]]\nid = \"eu-central\"\nname = \"Central Europe\"\ncity = \"Frankfurt\"\n\
             country = \"DE\"\ndriver = \"kubernetes\"\n\n[region.kubernetes]\n\
             kubeconfig = \"{}\"\nstorage_class = \"fast\"\ningress_class = \"nginx\"\n\
             base_domain = \"eu.matrix.example\"\nimage = \"ghcr.io/element-hq/synapse:v1.163.2\"\n\
             cluster_issuer = \"letsencrypt\"\n",
            kubeconfig.display()
        ),
    )
    .unwrap();
    // The billing command builds the whole portal, as serving does, and then ends.
    let billing = ["billing", "manual", "--customer", "nobody@example.com"];
    let out = server(&dir)
        .env("PORTAL_REGIONS_FILE", &regions)
        .args(billing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("region eu-central: the kubeconfig")
            && stderr.contains("could not be read"),
        "{stderr}"
    );

    // A kubeconfig as kubectl writes one: read, and no request is made at start.
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: eu\n\
         clusters:\n- name: eu\n  cluster:\n    server: https://127.0.0.1:9\n\
         contexts:\n- name: eu\n  context:\n    cluster: eu\n    user: portal\n\
         users:\n- name: portal\n  user:\n    token: not-a-real-token\n",
    )
    .unwrap();
    let out = server(&dir)
        .env("PORTAL_REGIONS_FILE", &regions)
        .args(billing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("kubeconfig"), "{stderr}");
    assert!(stderr.contains("no customer whose owner"), "{stderr}");
    assert!(
        !stderr.contains("not-a-real-token"),
        "no secret in the output"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
