//! The local driver: real Synapse processes on this machine, one per homeserver, each on a
//! loopback port of its own, with its data under `PORTAL_DATA_DIR/homeservers/<id>/`.
//!
//! Synapse's configuration is generated once (`--generate-config`: the signing key and the
//! secrets) and never rewritten; the portal's settings are a second file, `portal.yaml`, passed
//! with a second `-c` and written anew before each start. Later `-c` files override only
//! top-level keys, so `portal.yaml` holds the whole `listeners` list.
//!
//! Processes are children of the portal process that started them (the supervisor's holder)
//! and get SIGTERM when it dies; one left behind anyway is found by the pid file the portal
//! writes (`process.pid`) and stopped before its homeserver starts again.

use super::provisioner::{Deployment, ProvisionError, Provisioner, Status};
use async_trait::async_trait;
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Mutex,
    time::Duration,
};
use std::{
    os::unix::process::CommandExt,
    process::{Child, Command},
};
use uuid::Uuid;

/// Marks a homeserver directory whose generated configuration is complete.
const GENERATED: &str = ".generated";
/// The pid of the homeserver's process, written by the portal when it starts one (Synapse
/// writes its own pid file only when it daemonizes).
pub const PID_FILE: &str = "process.pid";

pub struct LocalDriver {
    /// The Python of a virtualenv with matrix-synapse (PORTAL_SYNAPSE_PYTHON).
    python: Option<PathBuf>,
    /// `PORTAL_DATA_DIR/homeservers`.
    root: PathBuf,
    http: reqwest::Client,
    processes: Mutex<HashMap<Uuid, Child>>,
}

impl LocalDriver {
    pub fn new(python: Option<PathBuf>, root: PathBuf) -> Self {
        Self {
            python,
            root,
            http: super::synapse::client(),
            processes: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self, id: Uuid) -> PathBuf {
        self.root.join(id.to_string())
    }

    fn python(&self) -> Result<&Path, ProvisionError> {
        match &self.python {
            Some(python) if python.exists() => Ok(python),
            Some(python) => Err(ProvisionError::NotInstalled(format!(
                "{} does not exist (PORTAL_SYNAPSE_PYTHON; scripts/setup.sh installs Synapse)",
                python.display()
            ))),
            None => Err(ProvisionError::NotInstalled(
                "PORTAL_SYNAPSE_PYTHON is not set (scripts/setup.sh installs Synapse and sets it)"
                    .into(),
            )),
        }
    }

    /// Generates Synapse's own configuration once. A generation that died half-way (no
    /// marker) is thrown away and done again.
    async fn generate(&self, deployment: &Deployment, dir: &Path) -> Result<(), ProvisionError> {
        if dir.join(GENERATED).exists() {
            return Ok(());
        }
        let python = self.python()?;
        if dir.exists() {
            tokio::fs::remove_dir_all(dir).await.map_err(io)?;
        }
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
        let mut command = Command::new(python);
        command
            .args(["-m", "synapse.app.homeserver", "--generate-config"])
            .args(["--server-name", &deployment.server_name])
            .arg("--report-stats=no")
            .arg("-c")
            .arg(dir.join("homeserver.yaml"))
            .arg("--data-directory")
            .arg(dir)
            .current_dir(dir)
            .stdin(Stdio::null());
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .map_err(|e| ProvisionError::Failed(e.to_string()))?
            .map_err(io)?;
        if !output.status.success() {
            return Err(ProvisionError::Failed(format!(
                "Synapse could not generate its configuration: {}",
                tail(&String::from_utf8_lossy(&output.stderr))
            )));
        }
        tokio::fs::write(dir.join(GENERATED), b"").await.map_err(io)
    }

    /// A Synapse of this directory that no process of ours started (its portal died): stopped.
    async fn stop_stray(&self, dir: &Path) {
        let Ok(pid) = std::fs::read_to_string(dir.join(PID_FILE)) else {
            return;
        };
        let Ok(pid) = pid.trim().parse::<i32>() else {
            return;
        };
        let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|cmdline| {
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                cmdline.contains("synapse.app.homeserver")
                    && std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir)
            })
            .unwrap_or(false);
        if !ours {
            return;
        }
        tracing::warn!(pid, dir = %dir.display(), "stopping a Synapse left behind by an earlier portal process");
        signal(pid, libc::SIGTERM);
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        signal(pid, libc::SIGKILL);
    }

    /// The portal's settings for the homeserver (the second `-c` file).
    fn portal_settings(deployment: &Deployment, port: u16) -> String {
        format!(
            "# Written by the portal before each start; homeserver.yaml (generated) is never changed.\n\
             listeners:\n\
             \x20 - port: {port}\n\
             \x20   bind_addresses: ['127.0.0.1']\n\
             \x20   type: http\n\
             \x20   tls: false\n\
             \x20   x_forwarded: true\n\
             \x20   resources:\n\
             \x20     - names: [client, federation]\n\
             \x20       compress: false\n\
             public_baseurl: \"http://127.0.0.1:{port}/\"\n\
             enable_registration: false\n\
             report_stats: false\n\
             # No key server is reachable from here; servers' keys are fetched from them directly.\n\
             trusted_key_servers: []\n\
             suppress_key_server_warning: true\n\
             # {name}\n",
            name = deployment.server_name,
        )
    }
}

fn io(error: std::io::Error) -> ProvisionError {
    ProvisionError::Failed(format!("file system: {error}"))
}

fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) with a pid read from a process we checked is a Synapse of ours.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// The last lines of a process's output, for an error message.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

#[async_trait]
impl Provisioner for LocalDriver {
    async fn create(&self, deployment: &Deployment) -> Result<(), ProvisionError> {
        let port = deployment.port.ok_or(ProvisionError::NoPort)?;
        let dir = self.dir(deployment.id);
        self.generate(deployment, &dir).await?;
        let settings = Self::portal_settings(deployment, port);
        // A name of its own per write: the supervisor and a provisioning job may write at once.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temporary = dir.join(format!("portal.yaml.{}-{n}.new", std::process::id()));
        tokio::fs::write(&temporary, settings).await.map_err(io)?;
        tokio::fs::rename(&temporary, dir.join("portal.yaml"))
            .await
            .map_err(io)
    }

    async fn start(&self, deployment: &Deployment) -> Result<(), ProvisionError> {
        let port = deployment.port.ok_or(ProvisionError::NoPort)?;
        {
            let mut processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(child) = processes.get_mut(&deployment.id) {
                if matches!(child.try_wait(), Ok(None)) {
                    return Ok(());
                }
                processes.remove(&deployment.id);
            }
        }
        let python = self.python()?.to_path_buf();
        let dir = self.dir(deployment.id);
        self.create(deployment).await?;
        self.stop_stray(&dir).await;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            return Err(ProvisionError::PortTaken);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("process.log"))
            .map_err(io)?;
        let mut command = Command::new(python);
        command
            .args(["-m", "synapse.app.homeserver"])
            .args(["-c", "homeserver.yaml", "-c", "portal.yaml"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io)?)
            .stderr(log);
        // SAFETY: prctl is async-signal-safe. The homeserver gets SIGTERM when the portal
        // process that supervises it dies, so none is left running unsupervised.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command.spawn().map_err(io)?;
        std::fs::write(dir.join(PID_FILE), child.id().to_string()).map_err(io)?;
        self.processes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(deployment.id, child);
        Ok(())
    }

    async fn stop(&self, deployment: &Deployment) -> Result<(), ProvisionError> {
        let child = self
            .processes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&deployment.id);
        if let Some(mut child) = child {
            signal(child.id() as i32, libc::SIGTERM);
            let mut exited = false;
            for _ in 0..150 {
                if !matches!(child.try_wait(), Ok(None)) {
                    exited = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !exited {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.stop_stray(&self.dir(deployment.id)).await;
        Ok(())
    }

    async fn destroy(&self, deployment: &Deployment) -> Result<(), ProvisionError> {
        self.stop(deployment).await?;
        match tokio::fs::remove_dir_all(self.dir(deployment.id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }

    async fn status(&self, deployment: &Deployment) -> Status {
        let exited = {
            let mut processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
            match processes.get_mut(&deployment.id).map(|c| c.try_wait()) {
                None => None,
                Some(Ok(None)) => Some(None),
                Some(Ok(Some(status))) => Some(Some(status.to_string())),
                Some(Err(e)) => Some(Some(e.to_string())),
            }
        };
        match exited {
            Some(Some(how)) => Status::Exited(how),
            Some(None) => match self.admin_url(deployment) {
                Some(url) if super::synapse::healthy(&self.http, &url).await => Status::Ready,
                _ => Status::Starting,
            },
            None if self.dir(deployment.id).join(GENERATED).exists() => Status::Stopped,
            None => Status::Absent,
        }
    }

    fn admin_url(&self, deployment: &Deployment) -> Option<String> {
        deployment
            .port
            .map(|port| format!("http://127.0.0.1:{port}"))
    }

    async fn registration_secret(&self, deployment: &Deployment) -> Result<String, ProvisionError> {
        let config = tokio::fs::read_to_string(self.dir(deployment.id).join("homeserver.yaml"))
            .await
            .map_err(io)?;
        registration_secret(&config).ok_or_else(|| {
            ProvisionError::Failed("the generated configuration has no registration secret".into())
        })
    }

    fn needs_port(&self) -> bool {
        true
    }
}

/// `registration_shared_secret` of a generated homeserver.yaml (a double-quoted string of
/// letters, digits and symbols that need no escaping).
fn registration_secret(config: &str) -> Option<String> {
    config.lines().find_map(|line| {
        let value = line.strip_prefix("registration_shared_secret:")?.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (!value.is_empty()).then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registration_secret_is_read_from_the_generated_configuration() {
        let config = "server_name: \"a.localhost\"\n\
                      registration_shared_secret: \"0cA.0VtB^=sQ*2I~#@&\"\n\
                      report_stats: false\n";
        assert_eq!(
            registration_secret(config).as_deref(),
            Some("0cA.0VtB^=sQ*2I~#@&")
        );
        assert_eq!(registration_secret("report_stats: false\n"), None);
    }

    #[test]
    fn the_portal_settings_hold_the_whole_listener_list_on_loopback() {
        let deployment = Deployment {
            id: Uuid::nil(),
            server_name: "alpha.localhost".into(),
            port: Some(20001),
        };
        let settings = LocalDriver::portal_settings(&deployment, 20001);
        assert!(settings.contains("listeners:\n  - port: 20001\n    bind_addresses: ['127.0.0.1']"));
        assert!(settings.contains("public_baseurl: \"http://127.0.0.1:20001/\""));
        assert!(settings.contains("enable_registration: false"));
    }
}
