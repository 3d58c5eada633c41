//! The supervisor: makes the processes match the homeservers' states. One portal replica
//! holds its lease (a row in `leases`, renewed every tick, lapsing after
//! [`LEASE_SECONDS`] without renewal); the others wait. The holder starts the homeservers that
//! are provisioning or running, restarts one that exits (after a backoff that doubles up to a
//! minute, each exit and restart recorded as a homeserver event), and stops the others. A
//! replica that loses the lease stops what it started.
//!
//! Leases and backoff are in wall-clock time, not the portal's clock: they are about real
//! processes and real replicas.

use super::{
    backups,
    lifecycle::{self, Homeserver},
    provisioner::{Deployment, Provisioner, Status},
    settings,
};
use crate::{billing::subscriptions::HomeserverState, portal::Portal};
use std::{
    collections::HashMap,
    future::Future,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};
use uuid::Uuid;

pub const LEASE: &str = "homeserver-supervisor";
pub const LEASE_SECONDS: i64 = 15;
/// How often the holder looks at every homeserver.
pub const TICK: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub struct Supervisor {
    portal: Portal,
    holder: String,
    holding: AtomicBool,
    /// Homeservers whose process exited: restarts so far, and when the next may start.
    restarts: Mutex<HashMap<Uuid, Restart>>,
    /// What this replica last wrote to the reverse proxy's map.
    proxy_map: Mutex<String>,
}

struct Restart {
    count: u32,
    /// A restart is pending from this instant.
    next_at: Option<Instant>,
    last_start: Instant,
}

impl Supervisor {
    pub fn new(portal: Portal) -> Self {
        let holder = format!(
            "{}-{}",
            std::process::id(),
            crate::random::token(&*portal.random, 6)
        );
        Self {
            portal,
            holder,
            holding: AtomicBool::new(false),
            restarts: Mutex::new(HashMap::new()),
            proxy_map: Mutex::new(String::new()),
        }
    }

    /// Takes or renews the lease; true while this replica holds it.
    async fn lease(&self) -> Result<bool, sqlx::Error> {
        crate::leases::take(&self.portal.db, LEASE, &self.holder, LEASE_SECONDS).await
    }

    async fn supervised(&self) -> Result<Vec<Homeserver>, sqlx::Error> {
        use HomeserverState::*;
        lifecycle::in_states(
            &self.portal.db,
            &[Provisioning, Running, Suspended, Restoring, Terminating],
        )
        .await
    }

    /// One look at every homeserver (only while holding the lease).
    pub async fn tick(&self) -> Result<(), sqlx::Error> {
        let holding = self.lease().await?;
        let was_holding = self.holding.swap(holding, Ordering::SeqCst);
        if !holding {
            if was_holding {
                tracing::warn!("the homeserver supervisor lease went to another replica; stopping this replica's homeservers");
                self.stop_all().await?;
            }
            return Ok(());
        }
        let homeservers = self.supervised().await?;
        self.write_proxy_map(&homeservers);
        for homeserver in &homeservers {
            let hosting = &self.portal.hosting;
            let Some(provisioner) = hosting.provisioners.for_region(&homeserver.region) else {
                continue;
            };
            let deployment = homeserver.deployment(&self.portal);
            if provisioner.needs_port() && deployment.port.is_none() {
                continue; // provisioning has not given it a port yet
            }
            if homeserver.state == HomeserverState::Restoring {
                self.restore(provisioner.as_ref(), homeserver).await?;
                continue;
            }
            let wanted_up = matches!(
                homeserver.state,
                HomeserverState::Provisioning | HomeserverState::Running
            );
            if !wanted_up {
                if let Err(error) = provisioner.stop(&deployment).await {
                    tracing::warn!(homeserver = %homeserver.id, %error, "could not stop a homeserver");
                }
                continue;
            }
            match provisioner.status(&deployment).await {
                // A settings change is applied once it runs (not while provisioning waits).
                Status::Ready if homeserver.state == HomeserverState::Running => {
                    self.reconfigure(provisioner.as_ref(), homeserver, &deployment)
                        .await?
                }
                Status::Ready | Status::Starting => {}
                // Provisioning makes its configuration first.
                Status::Absent => {}
                Status::Stopped => self.start(homeserver, false).await?,
                Status::Exited(how) => {
                    if self.pending(homeserver.id).is_none() {
                        lifecycle::record_event(&self.portal, homeserver.id, "exited", Some(&how))
                            .await?;
                        self.schedule_restart(homeserver.id);
                    }
                    if self
                        .pending(homeserver.id)
                        .is_some_and(|at| Instant::now() >= at)
                    {
                        self.start(homeserver, true).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Keeps the reverse proxy's map (nginx `map` syntax): one `<server name> <address>;` line
    /// per running homeserver of a driver with ports, rewritten atomically when it changes.
    fn write_proxy_map(&self, homeservers: &[Homeserver]) {
        let hosting = &self.portal.hosting;
        let Some(path) = &hosting.proxy_map else {
            return;
        };
        let mut lines: Vec<String> = homeservers
            .iter()
            .filter(|h| h.state == HomeserverState::Running)
            .filter_map(|h| {
                let provisioner = hosting.provisioners.for_region(&h.region)?;
                let deployment = h.deployment(&self.portal);
                let address = provisioner
                    .needs_port()
                    .then(|| provisioner.admin_url(&deployment))??;
                let address = address.trim_start_matches("http://").to_string();
                Some(format!("{} {address};", deployment.server_name))
            })
            .collect();
        lines.sort();
        let text = format!(
            "# Written by the portal: each running homeserver's server name and loopback address.\n{}\n",
            lines.join("\n")
        );
        let mut written = self.proxy_map.lock().unwrap_or_else(|e| e.into_inner());
        if *written == text {
            return;
        }
        let temporary = path.with_extension(format!("{}.new", std::process::id()));
        let outcome = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&temporary, &text))
            .and_then(|()| std::fs::rename(&temporary, path));
        match outcome {
            Ok(()) => *written = text,
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "could not write the reverse proxy's map")
            }
        }
    }

    /// Brings a running homeserver to its settings, and records which change is in effect.
    async fn reconfigure(
        &self,
        provisioner: &dyn Provisioner,
        homeserver: &Homeserver,
        deployment: &Deployment,
    ) -> Result<(), sqlx::Error> {
        match provisioner.reconfigure(deployment).await {
            Ok(restarted) => {
                if restarted {
                    lifecycle::record_event(&self.portal, homeserver.id, "reconfigured", None)
                        .await?;
                }
                if homeserver.settings_applied < homeserver.settings_version {
                    settings::mark_applied(
                        &self.portal,
                        homeserver.id,
                        homeserver.settings_version,
                    )
                    .await?;
                }
                Ok(())
            }
            Err(error) => {
                // The next tick finds it stopped or exited and starts it again.
                tracing::warn!(homeserver = %homeserver.id, %error, "could not apply a homeserver's settings");
                lifecycle::record_event(
                    &self.portal,
                    homeserver.id,
                    "reconfigure_failed",
                    Some(&error.to_string()),
                )
                .await
            }
        }
    }

    /// Puts a backup back (stopped, data replaced, running again); a failure is recorded and
    /// tried again after the restart backoff.
    async fn restore(
        &self,
        provisioner: &dyn Provisioner,
        homeserver: &Homeserver,
    ) -> Result<(), sqlx::Error> {
        if self
            .pending(homeserver.id)
            .is_some_and(|at| Instant::now() < at)
        {
            return Ok(());
        }
        match backups::restore(&self.portal, provisioner, homeserver).await {
            Ok(()) => {
                self.settled(homeserver.id, false);
                Ok(())
            }
            Err(error) => {
                tracing::warn!(homeserver = %homeserver.id, %error, "could not restore a backup");
                self.failed(homeserver, "restore_failed", &error.to_string())
                    .await
            }
        }
    }

    /// A step succeeded: no retry is pending (and, when it `started` a process, its backoff
    /// counts from now).
    fn settled(&self, id: Uuid, started: bool) {
        if let Some(entry) = self
            .restarts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&id)
        {
            entry.next_at = None;
            if started {
                entry.last_start = Instant::now();
            }
        }
    }

    /// A step that failed: tried again after the restart backoff, and recorded.
    async fn failed(
        &self,
        homeserver: &Homeserver,
        kind: &str,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        self.schedule_restart(homeserver.id);
        lifecycle::record_event(&self.portal, homeserver.id, kind, Some(error)).await
    }

    /// When the homeserver's scheduled restart is due (None: none is pending).
    fn pending(&self, id: Uuid) -> Option<Instant> {
        self.restarts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .and_then(|r| r.next_at)
    }

    /// Schedules a restart after a backoff that doubles with each restart (1 s up to a
    /// minute), starting again from one second once a process stayed up ten minutes.
    fn schedule_restart(&self, id: Uuid) {
        let mut restarts = self.restarts.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let entry = restarts.entry(id).or_insert(Restart {
            count: 0,
            next_at: None,
            last_start: now,
        });
        if now.duration_since(entry.last_start) > Duration::from_secs(600) {
            entry.count = 0;
        }
        let wait = Duration::from_secs(1u64 << entry.count.min(6)).min(MAX_BACKOFF);
        entry.count += 1;
        entry.next_at = Some(now + wait);
    }

    async fn start(&self, homeserver: &Homeserver, restart: bool) -> Result<(), sqlx::Error> {
        let hosting = &self.portal.hosting;
        let Some(provisioner) = hosting.provisioners.for_region(&homeserver.region) else {
            return Ok(());
        };
        let deployment = homeserver.deployment(&self.portal);
        match provisioner.start(&deployment).await {
            Ok(()) => {
                // Started: the next exit is a new one.
                self.settled(homeserver.id, true);
                let kind = if restart { "restarted" } else { "started" };
                lifecycle::record_event(&self.portal, homeserver.id, kind, None).await?;
                // It was started with the settings of the version read with it.
                settings::mark_applied(&self.portal, homeserver.id, homeserver.settings_version)
                    .await
            }
            Err(error) => {
                tracing::warn!(homeserver = %homeserver.id, %error, "could not start a homeserver");
                self.failed(homeserver, "start_failed", &error.to_string())
                    .await
            }
        }
    }

    /// Stops every homeserver this replica runs as its own process (at shutdown, or when the
    /// lease is lost); those of a cluster run on, and the next holder looks after them.
    pub async fn stop_all(&self) -> Result<(), sqlx::Error> {
        for homeserver in self.supervised().await? {
            let hosting = &self.portal.hosting;
            if let Some(provisioner) = hosting.provisioners.for_region(&homeserver.region) {
                if provisioner.stops_with_the_portal() {
                    let _ = provisioner.stop(&homeserver.deployment(&self.portal)).await;
                }
            }
        }
        Ok(())
    }

    /// Ticks until `shutdown`, then stops this replica's homeservers and lets the lease go.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let wake = self.portal.hosting.wake.clone();
        loop {
            if let Err(error) = self.tick().await {
                tracing::warn!(%error, "the homeserver supervisor could not reach the database");
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
        }
        if self.holding.load(Ordering::SeqCst) {
            if let Err(error) = self.stop_all().await {
                tracing::warn!(%error, "could not stop the homeservers at shutdown");
            }
            let _ = crate::leases::release(&self.portal.db, LEASE, &self.holder).await;
        }
    }
}
