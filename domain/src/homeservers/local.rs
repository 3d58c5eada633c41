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

use super::{
    provisioner::{Deployment, ProvisionError, Provisioner, Status},
    synapse_config::{self, registration_secret, Listener},
};
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
    processes: Mutex<HashMap<Uuid, Running>>,
}

/// A process this driver started, and the portal settings it was started with.
struct Running {
    child: Child,
    settings: String,
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

    /// Backups live with the homeserver's data (and are deleted with it).
    fn backup_dir(&self, id: Uuid, backup: Uuid) -> PathBuf {
        self.dir(id).join("backups").join(backup.to_string())
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
        run(command, "Synapse could not generate its configuration").await?;
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

    /// The portal's settings for the homeserver (the second `-c` file): a loopback listener,
    /// and the customer's settings with the plan's limits.
    fn portal_settings(deployment: &Deployment, port: u16) -> String {
        let public = deployment
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
        format!(
            "# Written by the portal before each start; homeserver.yaml (generated) is never changed.\n{}",
            synapse_config::portal_settings(
                deployment,
                &Listener {
                    port,
                    bind: "127.0.0.1",
                    public_url: &public,
                }
            )
        )
    }

    /// Writes `portal.yaml` (atomically) and returns what it wrote.
    async fn write_settings(&self, deployment: &Deployment) -> Result<String, ProvisionError> {
        let port = deployment.port.ok_or(ProvisionError::NoPort)?;
        let dir = self.dir(deployment.id);
        let settings = Self::portal_settings(deployment, port);
        // A name of its own per write: the supervisor and a provisioning job may write at once.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temporary = dir.join(format!("portal.yaml.{}-{n}.new", std::process::id()));
        tokio::fs::write(&temporary, &settings).await.map_err(io)?;
        tokio::fs::rename(&temporary, dir.join("portal.yaml"))
            .await
            .map_err(io)?;
        Ok(settings)
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

/// Runs a command to its end; a failure says `what` with the end of its error output.
async fn run(mut command: Command, what: &str) -> Result<(), ProvisionError> {
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| ProvisionError::Failed(e.to_string()))?
        .map_err(io)?;
    if output.status.success() {
        return Ok(());
    }
    Err(ProvisionError::Failed(format!(
        "{what}: {}",
        tail(&String::from_utf8_lossy(&output.stderr))
    )))
}

/// The last lines of a process's output, for an error message.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

#[async_trait]
impl Provisioner for LocalDriver {
    async fn create(&self, deployment: &Deployment) -> Result<(), ProvisionError> {
        deployment.port.ok_or(ProvisionError::NoPort)?;
        self.generate(deployment, &self.dir(deployment.id)).await?;
        self.write_settings(deployment).await.map(|_| ())
    }

    async fn start(&self, deployment: &Deployment) -> Result<(), ProvisionError> {
        let port = deployment.port.ok_or(ProvisionError::NoPort)?;
        {
            let mut processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(running) = processes.get_mut(&deployment.id) {
                if matches!(running.child.try_wait(), Ok(None)) {
                    return Ok(());
                }
                processes.remove(&deployment.id);
            }
        }
        let python = self.python()?.to_path_buf();
        let dir = self.dir(deployment.id);
        self.generate(deployment, &dir).await?;
        let settings = self.write_settings(deployment).await?;
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
            .insert(deployment.id, Running { child, settings });
        Ok(())
    }

    async fn reconfigure(&self, deployment: &Deployment) -> Result<bool, ProvisionError> {
        let port = deployment.port.ok_or(ProvisionError::NoPort)?;
        let wanted = Self::portal_settings(deployment, port);
        let differs = {
            let mut processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
            match processes.get_mut(&deployment.id) {
                Some(running) => {
                    matches!(running.child.try_wait(), Ok(None)) && running.settings != wanted
                }
                None => false,
            }
        };
        if !differs {
            return Ok(false);
        }
        self.stop(deployment).await?;
        self.start(deployment).await?;
        Ok(true)
    }

    async fn stop(&self, deployment: &Deployment) -> Result<(), ProvisionError> {
        let child = self
            .processes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&deployment.id);
        if let Some(Running { mut child, .. }) = child {
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
            match processes
                .get_mut(&deployment.id)
                .map(|r| r.child.try_wait())
            {
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

    async fn backup(
        &self,
        deployment: &Deployment,
        backup: Uuid,
    ) -> Result<Option<u64>, ProvisionError> {
        let python = self.python()?.to_path_buf();
        let dir = self.dir(deployment.id);
        let into = self.backup_dir(deployment.id, backup);
        if into.exists() {
            tokio::fs::remove_dir_all(&into).await.map_err(io)?;
        }
        tokio::fs::create_dir_all(&into).await.map_err(io)?;
        // The database through SQLite's online backup (consistent while Synapse writes), by the
        // Python that runs Synapse, whose sqlite3 module has it.
        let mut command = Command::new(python);
        command
            .args(["-c", SQLITE_BACKUP])
            .arg(dir.join(DATABASE))
            .arg(into.join(DATABASE))
            .stdin(Stdio::null());
        run(command, "the database could not be backed up").await?;
        let key = signing_key(deployment);
        let (from, to) = (dir.clone(), into.clone());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::copy(from.join(&key), to.join(&key))?;
            copy_tree(&from.join(MEDIA), &to.join(MEDIA))?;
            std::fs::write(to.join(GENERATED), b"")
        })
        .await
        .map_err(|e| ProvisionError::Failed(e.to_string()))?
        .map_err(io)?;
        let size = tokio::task::spawn_blocking(move || tree_size(&into))
            .await
            .map_err(|e| ProvisionError::Failed(e.to_string()))?
            .map_err(io)?;
        Ok(Some(size))
    }

    async fn restore(&self, deployment: &Deployment, backup: Uuid) -> Result<bool, ProvisionError> {
        let dir = self.dir(deployment.id);
        let from = self.backup_dir(deployment.id, backup);
        if !from.join(GENERATED).exists() {
            return Err(ProvisionError::Failed(
                "the backup is incomplete or gone".into(),
            ));
        }
        let key = signing_key(deployment);
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            // The database's journal files belong to the database they replace.
            for suffix in ["", "-wal", "-shm", "-journal"] {
                match std::fs::remove_file(dir.join(format!("{DATABASE}{suffix}"))) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::copy(from.join(DATABASE), dir.join(DATABASE))?;
            match std::fs::remove_dir_all(dir.join(MEDIA)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            copy_tree(&from.join(MEDIA), &dir.join(MEDIA))?;
            std::fs::copy(from.join(&key), dir.join(&key)).map(|_| ())
        })
        .await
        .map_err(|e| ProvisionError::Failed(e.to_string()))?
        .map_err(io)?;
        Ok(true)
    }

    async fn delete_backup(
        &self,
        deployment: &Deployment,
        backup: Uuid,
    ) -> Result<(), ProvisionError> {
        match tokio::fs::remove_dir_all(self.backup_dir(deployment.id, backup)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }

    fn needs_port(&self) -> bool {
        true
    }

    fn stops_with_the_portal(&self) -> bool {
        true
    }
}

/// Synapse's database, in the homeserver's directory (`--data-directory`).
const DATABASE: &str = "homeserver.db";
/// Synapse's media store, in the homeserver's directory.
const MEDIA: &str = "media_store";
/// Copies a SQLite database with SQLite's online backup API: `python -c … source target`.
const SQLITE_BACKUP: &str = "import sqlite3, sys\n\
source = sqlite3.connect(sys.argv[1])\n\
target = sqlite3.connect(sys.argv[2])\n\
source.backup(target)\n\
target.close()\n\
source.close()\n";

/// The signing key's file name, as `--generate-config` names it.
fn signing_key(deployment: &Deployment) -> String {
    format!("{}.signing.key", deployment.server_name)
}

/// Copies a directory tree (a missing source is an empty tree).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    let entries = match std::fs::read_dir(from) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The bytes of the files in a tree.
fn tree_size(dir: &Path) -> std::io::Result<u64> {
    let mut size = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            size += tree_size(&entry.path())?;
        } else if kind.is_file() {
            size += entry.metadata()?.len();
        }
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_listener_is_on_loopback_and_is_the_public_url_without_a_pattern() {
        let deployment = Deployment::example("alpha.localhost", Some(20001));
        let settings = LocalDriver::portal_settings(&deployment, 20001);
        assert!(settings.contains("listeners:\n  - port: 20001\n    bind_addresses: ['127.0.0.1']"));
        assert!(settings.contains("public_baseurl: \"http://127.0.0.1:20001/\""));
        assert!(!settings.contains("serve_server_wellknown"));
        let proxied = Deployment {
            public_url: Some("https://alpha.localhost".into()),
            ..deployment
        };
        let settings = LocalDriver::portal_settings(&proxied, 20001);
        assert!(settings.contains("public_baseurl: \"https://alpha.localhost/\""));
        assert!(settings.contains("serve_server_wellknown: true"));
    }
}
