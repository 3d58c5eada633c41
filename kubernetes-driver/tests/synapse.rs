//! What the Kubernetes driver gives Synapse, run by a real Synapse (PORTAL_SYNAPSE_PYTHON, the
//! version the image tag names): its ConfigMap's configuration and a Secret the portal
//! generated, with only the pod's paths and port moved to this machine. Synapse starts, signs
//! with the portal's key, and serves the well-known answer that sends federation to port 443.

mod common;

use common::deployment;
use kubernetes_driver::objects::{self, Generated};
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Kills the Synapse process when the test ends, passed or not.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GETs `url` and reads its answer as JSON.
async fn get_json(http: &reqwest::Client, url: String) -> serde_json::Value {
    let text = http.get(url).send().await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn synapse_starts_with_the_configuration_and_secrets_the_driver_makes() {
    let python = std::env::var("PORTAL_SYNAPSE_PYTHON")
        .expect("PORTAL_SYNAPSE_PYTHON names Synapse's Python (scripts/env.sh sets it)");
    let dir = std::env::temp_dir().join(format!("k8s-synapse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["data", "secrets", "config"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let deployment = deployment("starter", "eu-central");
    let generated = Generated::new();
    std::fs::write(dir.join("secrets/secrets.yaml"), generated.secrets_yaml()).unwrap();
    std::fs::write(dir.join("secrets/signing.key"), &generated.signing_key).unwrap();
    let http = reqwest::Client::new();

    // Synapse cannot report a port it chose, so it gets one from a range the other tests do
    // not use, and another when that one is taken.
    let mut started = None;
    for _ in 0..10 {
        let port: u16 = 24_100 + rand::random::<u16>() % 800;
        // The pod's mounts and port, moved here; nothing else changes.
        let config = objects::homeserver_yaml(&deployment)
            .replace("/data/", &format!("{}/data/", dir.display()))
            .replace("/secrets/", &format!("{}/secrets/", dir.display()))
            .replace("port: 8008", &format!("port: {port}"))
            .replace("['0.0.0.0']", "['127.0.0.1']");
        std::fs::write(dir.join("config/homeserver.yaml"), config).unwrap();
        let log = std::fs::File::create(dir.join("synapse.log")).unwrap();
        let mut synapse = Running(
            Command::new(&python)
                .args(["-m", "synapse.app.homeserver"])
                .arg("-c")
                .arg(dir.join("config/homeserver.yaml"))
                .arg("-c")
                .arg(dir.join("secrets/secrets.yaml"))
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("Synapse starts"),
        );
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            // Whether ours still runs first: a port taken by another Synapse answers too.
            let log = std::fs::read_to_string(dir.join("synapse.log")).unwrap_or_default();
            if synapse.0.try_wait().unwrap().is_some() {
                assert!(
                    log.contains("Address already in use"),
                    "Synapse ended: {log}"
                );
                break; // taken: another port
            }
            let healthy = http
                .get(format!("{base}/health"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if healthy {
                started = Some((synapse, base));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Synapse did not answer /health: {log}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if started.is_some() {
            break;
        }
    }
    let (_synapse, base) = started.expect("Synapse found a free port");

    // It signs with the key the portal generated.
    let keys: serde_json::Value = get_json(&http, format!("{base}/_matrix/key/v2/server")).await;
    let key_id = generated.signing_key.split(' ').nth(1).unwrap();
    assert_eq!(keys["server_name"], "starter-team.eu.matrix.example");
    assert!(
        keys["verify_keys"][format!("ed25519:{key_id}")].is_object(),
        "{keys}"
    );

    // Other servers are sent to port 443, where the Ingress is.
    let well_known: serde_json::Value =
        get_json(&http, format!("{base}/.well-known/matrix/server")).await;
    assert_eq!(well_known["m.server"], "starter-team.eu.matrix.example:443");

    // The portal's registration secret is the one Synapse checks (a wrong one is refused).
    let nonce: serde_json::Value =
        get_json(&http, format!("{base}/_synapse/admin/v1/register")).await;
    let nonce = nonce["nonce"].as_str().unwrap().to_string();
    let register = |secret: String, nonce: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let mac = domain::homeservers::synapse::registration_mac(
                &secret,
                &nonce,
                "portal-check",
                "a-long-password-1",
                true,
            );
            http.post(format!("{base}/_synapse/admin/v1/register"))
                .header("content-type", "application/json")
                .body(
                    serde_json::json!({
                        "nonce": nonce, "username": "portal-check",
                        "password": "a-long-password-1", "admin": true, "mac": mac,
                    })
                    .to_string(),
                )
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        register("not-the-secret".into(), nonce).await,
        403,
        "a wrong secret is refused"
    );
    let nonce: serde_json::Value =
        get_json(&http, format!("{base}/_synapse/admin/v1/register")).await;
    let status = register(
        generated.registration_shared_secret.clone(),
        nonce["nonce"].as_str().unwrap().to_string(),
    )
    .await;
    assert_eq!(status, 200, "the generated secret registers an admin");
    let _ = std::fs::remove_dir_all(&dir);
}
