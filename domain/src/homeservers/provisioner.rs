//! Provisioners: what makes and runs a region's homeservers. Each region names its driver in
//! the regions file; a homeserver's data stays with its region's provisioner (P11). The portal
//! asks a provisioner to create, start, stop and destroy a homeserver, reads its status, and
//! reaches its admin API at the address the provisioner gives.

use async_trait::async_trait;
use std::{collections::HashMap, sync::Arc};
use uuid::Uuid;

/// What a provisioner needs to know about one homeserver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub id: Uuid,
    /// The customer it belongs to.
    pub customer_id: Uuid,
    /// The region it runs in.
    pub region: String,
    /// `<name>.<PORTAL_HOMESERVER_DOMAIN>`, or `<name>.<the region's base_domain>`.
    pub server_name: String,
    /// Where Matrix clients reach it, from PORTAL_HOMESERVER_URL (None: its own address).
    pub public_url: Option<String>,
    /// The loopback port it listens on (the local driver; None elsewhere).
    pub port: Option<u16>,
    /// What it runs with (the customer's settings and the plan's limits).
    pub settings: super::settings::Settings,
    /// What its plan gives it (the defaults when it has no plan any more).
    pub size: Size,
}

/// The compute and storage a homeserver is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub resources: crate::plans::Resources,
    pub storage_gb: u32,
}

impl Default for Size {
    fn default() -> Self {
        Self {
            resources: crate::plans::Resources::default(),
            storage_gb: 10,
        }
    }
}

impl Deployment {
    /// A homeserver with the default settings and size, for tests of what drivers make.
    pub fn example(server_name: &str, port: Option<u16>) -> Self {
        Self {
            id: Uuid::nil(),
            customer_id: Uuid::nil(),
            region: "eu-central".into(),
            server_name: server_name.into(),
            public_url: None,
            port,
            settings: super::settings::Settings::default(),
            size: Size::default(),
        }
    }
}

/// A homeserver as its provisioner finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Nothing of it exists (never created, or destroyed).
    Absent,
    /// Created, no process runs.
    Stopped,
    /// The process runs and does not answer its health check yet.
    Starting,
    /// The process answers `/health`.
    Ready,
    /// The process ended by itself: how, in words.
    Exited(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("Synapse is not installed here: {0}")]
    NotInstalled(String),
    #[error("the homeserver has no port")]
    NoPort,
    #[error("the port is taken by another program")]
    PortTaken,
    #[error("{0}")]
    Failed(String),
}

#[async_trait]
pub trait Provisioner: Send + Sync {
    /// Makes the homeserver's configuration and storage. Safe to call again: what exists is
    /// kept (generated secrets are never rewritten), the portal's settings are written anew.
    async fn create(&self, deployment: &Deployment) -> Result<(), ProvisionError>;
    /// Starts it (nothing when it runs already).
    async fn start(&self, deployment: &Deployment) -> Result<(), ProvisionError>;
    /// Brings a homeserver that runs to the deployment's settings: where they differ from
    /// those it was started with, its configuration is rewritten and it is restarted. Returns
    /// whether it was restarted (false: it runs with them already, or does not run here).
    async fn reconfigure(&self, deployment: &Deployment) -> Result<bool, ProvisionError>;
    /// Stops it (nothing when it is stopped); its data stays.
    async fn stop(&self, deployment: &Deployment) -> Result<(), ProvisionError>;
    /// Stops it and removes all its data.
    async fn destroy(&self, deployment: &Deployment) -> Result<(), ProvisionError>;
    async fn status(&self, deployment: &Deployment) -> Status;
    /// Where the portal reaches the homeserver's client and admin APIs.
    fn admin_url(&self, deployment: &Deployment) -> Option<String>;
    /// Where Matrix clients reach it when PORTAL_HOMESERVER_URL sets no pattern.
    fn client_url(&self, deployment: &Deployment) -> Option<String> {
        self.admin_url(deployment)
    }
    /// The secret of Synapse's shared-secret registration.
    async fn registration_secret(&self, deployment: &Deployment) -> Result<String, ProvisionError>;
    /// Makes backup `backup` of the homeserver's data (database, media, signing key) while it
    /// may run. Returns its size in bytes once it is complete; None while the provisioner is
    /// still making it (the backup job asks again, with the same id, on its next run).
    async fn backup(
        &self,
        deployment: &Deployment,
        backup: Uuid,
    ) -> Result<Option<u64>, ProvisionError>;
    /// Replaces the data of the stopped homeserver by backup `backup`'s. Returns true once it
    /// is done; false while it is under way (the supervisor asks again on its next tick).
    async fn restore(&self, deployment: &Deployment, backup: Uuid) -> Result<bool, ProvisionError>;
    /// Deletes backup `backup` (nothing when it is gone already).
    async fn delete_backup(
        &self,
        deployment: &Deployment,
        backup: Uuid,
    ) -> Result<(), ProvisionError>;
    /// Whether homeservers of this driver need a port of the portal's range.
    fn needs_port(&self) -> bool;
    /// Whether its homeservers are processes of the portal's supervisor, stopped when the
    /// portal stops or loses the supervisor lease (false: they run on without the portal).
    fn stops_with_the_portal(&self) -> bool;
}

/// The provisioner of each region.
#[derive(Clone, Default)]
pub struct Provisioners {
    by_region: HashMap<String, Arc<dyn Provisioner>>,
}

impl Provisioners {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, region: &str, provisioner: Arc<dyn Provisioner>) -> Self {
        self.by_region.insert(region.to_string(), provisioner);
        self
    }

    pub fn for_region(&self, region: &str) -> Option<&Arc<dyn Provisioner>> {
        self.by_region.get(region)
    }
}
