//! The VIES stand-in of the project's test tooling (end2end/vies-server.py), one per test.

use std::process::{Child, Command, Stdio};

pub struct ViesServer {
    child: Child,
    pub base: String,
    client: reqwest::Client,
}

impl Drop for ViesServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ViesServer {
    pub fn start() -> Self {
        let mut command = Command::new(super::stripe::python());
        command
            .arg("vies-server.py")
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../end2end"))
            .stderr(Stdio::inherit());
        let (child, ports) = test_support::spawn_listening(
            command,
            "end2end/vies-server.py with PORTAL_TEST_PYTHON (scripts/setup.sh --test installs aiohttp)",
        );
        Self {
            child,
            base: format!("http://127.0.0.1:{}", ports[0]),
            client: reqwest::Client::new(),
        }
    }

    /// From now on VIES answers `answer` (valid, invalid, slow or an error code) for `number`.
    pub async fn answer(&self, number: &str, answer: &str) {
        let response = self
            .client
            .post(format!("{}/_vies/answer", self.base))
            .form(&[("number", number), ("answer", answer)])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// The check requests VIES received, as sent.
    pub async fn requests(&self) -> Vec<serde_json::Value> {
        let text = self
            .client
            .get(format!("{}/_vies/requests", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }
}
