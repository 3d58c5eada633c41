//! The Kubernetes driver: each homeserver of a region is a namespace in the region's cluster
//! (see [`objects`] for what it holds), kept by server-side apply with one field manager.
//!
//! - create: the namespace and its objects, with the StatefulSet at the replicas it has (0
//!   for a new one); the Secret is made once and never rewritten.
//! - start and stop: the same apply with one replica or none (suspension scales to zero).
//!   The supervisor asks each running homeserver's status and settings every tick (2 s): two
//!   reads of its StatefulSet (and one of its pod while it is not ready); a suspended one
//!   costs one read. The portal stopping leaves them running.
//! - reconfigure: where the StatefulSet's hash of what the portal wants (configuration,
//!   image, the plan's resources and storage) differs, the apply again; the configuration's
//!   hash in the pod template makes Kubernetes replace the pod, and a changed image tag in the
//!   regions file upgrades every homeserver this way.
//! - destroy: deletes the namespace (the lifecycle calls it after the retention period).
//! - backups: CSI volume snapshots of the data volume (the region's `snapshot_class`), and a
//!   restore makes the volume anew from one. Neither waits on the cluster: each call takes
//!   one step and says whether it is done, and the backup job and the supervisor ask again.
//!
//! It has not been run against a real cluster: its objects are checked against golden files
//! and Kubernetes' schemas, and its requests against kube's mock client.

pub mod objects;

use async_trait::async_trait;
use domain::homeservers::{
    provisioner::{Deployment, ProvisionError, Provisioner, Status},
    regions::KubernetesRegion,
    synapse_config::registration_secret,
};
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Pod, Secret, Service},
    networking::v1::Ingress,
};
use kube::{
    api::{
        Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
        PostParams,
    },
    Client,
};
use objects::{ClaimTemplate, Generated, FIELD_MANAGER};
use serde_json::json;
use uuid::Uuid;

pub struct KubernetesDriver {
    client: Client,
    region: KubernetesRegion,
    /// Homeservers whose restore has deleted their old data volume.
    restoring: std::sync::Mutex<std::collections::HashSet<Uuid>>,
}

impl KubernetesDriver {
    /// A driver for the cluster the region names: its kubeconfig (and context), or the
    /// cluster the portal runs in.
    pub async fn connect(region: KubernetesRegion) -> Result<Self, String> {
        let config = match &region.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| format!("the kubeconfig {path} could not be read: {e}"))?;
                let options = kube::config::KubeConfigOptions {
                    context: region.context.clone(),
                    ..Default::default()
                };
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| format!("the kubeconfig {path} is not usable: {e}"))?
            }
            None => kube::Config::incluster().map_err(|e| {
                format!("no kubeconfig is set and the portal does not run in a cluster: {e}")
            })?,
        };
        let client = Client::try_from(config)
            .map_err(|e| format!("the Kubernetes client could not be made: {e}"))?;
        Ok(Self::with_client(client, region))
    }

    /// A driver that talks through `client` (kube's mock client in tests).
    pub fn with_client(client: Client, region: KubernetesRegion) -> Self {
        Self {
            client,
            region,
            restoring: Default::default(),
        }
    }

    fn namespace(&self, deployment: &Deployment) -> String {
        objects::namespace_name(&self.region, deployment.id)
    }

    fn api<K>(&self, deployment: &Deployment) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace(deployment))
    }

    fn snapshots(&self, deployment: &Deployment) -> (Api<DynamicObject>, ApiResource) {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(objects::SNAPSHOT_GROUP, "v1", "VolumeSnapshot"),
            "volumesnapshots",
        );
        let api = Api::namespaced_with(self.client.clone(), &self.namespace(deployment), &resource);
        (api, resource)
    }

    fn snapshot_class(&self) -> Result<&str, ProvisionError> {
        self.region.snapshot_class.as_deref().ok_or_else(|| {
            ProvisionError::Failed(
                "this region makes no backups: its [region.kubernetes] sets no snapshot_class \
                 (a VolumeSnapshotClass of the cluster)"
                    .into(),
            )
        })
    }

    /// Applies every object of the homeserver. `replicas`: None keeps what the StatefulSet
    /// has (0 for a new one).
    async fn apply(
        &self,
        deployment: &Deployment,
        replicas: Option<i32>,
    ) -> Result<(), ProvisionError> {
        server_side_apply(
            &Api::<Namespace>::all(self.client.clone()),
            &self.namespace(deployment),
            &objects::namespace(&self.region, deployment),
            "the namespace could not be applied",
        )
        .await?;
        self.ensure_secret(deployment).await?;
        server_side_apply(
            &self.api::<ConfigMap>(deployment),
            objects::CONFIG_MAP,
            &objects::config_map(&self.region, deployment),
            "the configuration could not be applied",
        )
        .await?;
        let existing = self.stateful_set(deployment).await?;
        let replicas = replicas
            .or_else(|| existing.as_ref().and_then(|s| s.spec.as_ref()?.replicas))
            .unwrap_or(0);
        // The volume template cannot change once the StatefulSet exists (not even its storage
        // class); a bigger plan grows the claim itself.
        let claim = ClaimTemplate::kept_or_new(existing.as_ref(), &self.region, deployment);
        let mut set = objects::stateful_set(&self.region, deployment, replicas, &claim);
        set.metadata.annotations = Some(std::collections::BTreeMap::from([(
            objects::SPEC_HASH.to_string(),
            objects::spec_hash(&self.region, deployment),
        )]));
        server_side_apply(
            &self.api::<StatefulSet>(deployment),
            objects::SYNAPSE,
            &set,
            "the StatefulSet could not be applied",
        )
        .await?;
        if existing.is_some() && claim.gb < deployment.size.storage_gb {
            // Best effort: a storage class that cannot expand must not stop the homeserver
            // from starting or being suspended.
            if let Err(error) = self.grow_claim(deployment).await {
                tracing::warn!(homeserver = %deployment.id, %error, "the data volume was not grown");
            }
        }
        server_side_apply(
            &self.api::<Service>(deployment),
            objects::SYNAPSE,
            &objects::service(&self.region, deployment),
            "the Service could not be applied",
        )
        .await?;
        server_side_apply(
            &self.api::<Ingress>(deployment),
            objects::SYNAPSE,
            &objects::ingress(&self.region, deployment),
            "the Ingress could not be applied",
        )
        .await
    }

    /// The homeserver's StatefulSet, where it exists.
    async fn stateful_set(
        &self,
        deployment: &Deployment,
    ) -> Result<Option<StatefulSet>, ProvisionError> {
        self.api::<StatefulSet>(deployment)
            .get_opt(objects::SYNAPSE)
            .await
            .map_err(failed("the StatefulSet could not be read"))
    }

    /// Remembers (or forgets) that a restore has deleted the homeserver's old volume.
    fn old_volume_deleted(&self, id: Uuid, deleted: bool) {
        let mut restoring = self.restoring.lock().unwrap_or_else(|e| e.into_inner());
        if deleted {
            restoring.insert(id);
        } else {
            restoring.remove(&id);
        }
    }

    /// Makes the Secret when it does not exist; an existing one is never rewritten.
    async fn ensure_secret(&self, deployment: &Deployment) -> Result<(), ProvisionError> {
        let secrets = self.api::<Secret>(deployment);
        let existing = secrets
            .get_opt(objects::SECRET)
            .await
            .map_err(failed("the Secret could not be read"))?;
        if existing.is_some() {
            return Ok(());
        }
        let secret = objects::secret(&self.region, deployment, &Generated::new());
        // 409: made by another portal replica in the meantime; theirs is kept.
        allowing(
            409,
            secrets.create(&PostParams::default(), &secret).await,
            "the Secret could not be made",
        )
    }

    /// Grows the data claim to the plan's storage where it is smaller (a claim never shrinks).
    async fn grow_claim(&self, deployment: &Deployment) -> Result<(), ProvisionError> {
        let claims = self.api::<PersistentVolumeClaim>(deployment);
        let Some(claim) = claims
            .get_opt(objects::DATA_CLAIM)
            .await
            .map_err(failed("the data volume could not be read"))?
        else {
            return Ok(());
        };
        let current = claim
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref()?.requests.as_ref()?.get("storage"))
            .and_then(|q| bytes(&q.0));
        let wanted = u64::from(deployment.size.storage_gb) << 30;
        if current.is_some_and(|current| current >= wanted) {
            return Ok(());
        }
        let patch = json!({ "spec": { "resources": { "requests": {
            "storage": format!("{}Gi", deployment.size.storage_gb)
        } } } });
        claims
            .patch(
                objects::DATA_CLAIM,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(failed("the data volume could not be grown"))?;
        Ok(())
    }

    /// The first container's state in the homeserver's pod, where it is one that needs help.
    async fn pod_trouble(&self, deployment: &Deployment) -> Option<String> {
        let pod = self
            .api::<Pod>(deployment)
            .get_opt(objects::POD)
            .await
            .ok()??;
        if pod.metadata.deletion_timestamp.is_some() {
            return None; // being replaced (a rollout, a scale-down): not a crash
        }
        let status = pod.status?;
        // No node takes it (not enough room, an unbound volume): the scheduler's words.
        let unschedulable = status.conditions.iter().flatten().find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        });
        if let Some(condition) = unschedulable {
            return Some(format!(
                "Unschedulable: {}",
                condition.message.as_deref().unwrap_or("no node can run it")
            ));
        }
        let container = status.container_statuses?.into_iter().next()?;
        let state = container.state?;
        if let Some(terminated) = state.terminated {
            return Some(format!(
                "exit code {}{}",
                terminated.exit_code,
                terminated
                    .reason
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ));
        }
        let waiting = state.waiting?;
        let reason = waiting.reason?;
        const TROUBLE: [&str; 6] = [
            "CrashLoopBackOff",
            "ErrImagePull",
            "ImagePullBackOff",
            "InvalidImageName",
            "CreateContainerConfigError",
            "CreateContainerError",
        ];
        TROUBLE
            .contains(&reason.as_str())
            .then(|| match waiting.message {
                Some(message) => format!("{reason}: {message}"),
                None => reason,
            })
    }
}

/// The bytes of a Kubernetes storage quantity ("10Gi", "500M", "1073741824").
pub fn bytes(quantity: &str) -> Option<u64> {
    let split = quantity
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// The HTTP status of an error the API server answered with.
fn code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

fn failed(what: &'static str) -> impl Fn(kube::Error) -> ProvisionError {
    move |error| ProvisionError::Failed(format!("{what}: {error}"))
}

/// An API call's outcome, where an answer with status `code` (404: gone already, 409: there
/// already) is as good as success.
fn allowing<T>(
    code_allowed: u16,
    outcome: Result<T, kube::Error>,
    what: &'static str,
) -> Result<(), ProvisionError> {
    match outcome {
        Err(error) if code(&error) == Some(code_allowed) => Ok(()),
        other => other.map(|_| ()).map_err(failed(what)),
    }
}

/// Server-side apply of `object` by the portal's field manager (taking over any field).
async fn server_side_apply<K>(
    api: &Api<K>,
    name: &str,
    object: &K,
    what: &'static str,
) -> Result<(), ProvisionError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map(|_| ())
    .map_err(failed(what))
}

/// A snapshot's size once the cluster has finished it (None: not ready, or no status yet).
fn ready_size(status: Option<&serde_json::Value>) -> Option<u64> {
    let status = status?;
    if status.get("readyToUse").and_then(|r| r.as_bool()) != Some(true) {
        return None;
    }
    Some(
        status
            .get("restoreSize")
            .and_then(|s| s.as_str())
            .and_then(bytes)
            .unwrap_or(0),
    )
}

/// The name of a backup's volume snapshot.
pub fn snapshot_name(backup: Uuid) -> String {
    format!("backup-{backup}")
}

#[async_trait]
impl Provisioner for KubernetesDriver {
    async fn create(&self, deployment: &Deployment) -> Result<(), ProvisionError> {
        self.apply(deployment, None).await
    }

    async fn start(&self, deployment: &Deployment) -> Result<(), ProvisionError> {
        self.apply(deployment, Some(1)).await
    }

    async fn reconfigure(&self, deployment: &Deployment) -> Result<bool, ProvisionError> {
        let Some(set) = self.stateful_set(deployment).await? else {
            return Ok(false);
        };
        let spec = set.spec.as_ref();
        if spec.and_then(|s| s.replicas) != Some(1) {
            return Ok(false);
        }
        let applied = set
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(objects::SPEC_HASH));
        if applied.map(String::as_str)
            == Some(objects::spec_hash(&self.region, deployment).as_str())
        {
            return Ok(false);
        }
        self.apply(deployment, Some(1)).await?;
        Ok(true)
    }

    async fn stop(&self, deployment: &Deployment) -> Result<(), ProvisionError> {
        // Asked every supervisor tick while suspended: one read when there is nothing to do.
        let set = self.stateful_set(deployment).await?;
        match set.and_then(|s| s.spec?.replicas) {
            None | Some(0) => Ok(()),
            Some(_) => self.apply(deployment, Some(0)).await,
        }
    }

    async fn destroy(&self, deployment: &Deployment) -> Result<(), ProvisionError> {
        let deleted = Api::<Namespace>::all(self.client.clone())
            .delete(&self.namespace(deployment), &DeleteParams::background())
            .await;
        allowing(404, deleted, "the namespace could not be deleted")
    }

    async fn status(&self, deployment: &Deployment) -> Status {
        // A missing namespace answers 404 for the StatefulSet as well.
        let set = match self.stateful_set(deployment).await {
            Ok(Some(set)) => set,
            Ok(None) => return Status::Absent,
            Err(error) => {
                // A cluster that does not answer for a moment is not a crash.
                tracing::warn!(homeserver = %deployment.id, %error, "the cluster did not answer");
                return Status::Starting;
            }
        };
        if set.spec.as_ref().and_then(|s| s.replicas) == Some(0) {
            return Status::Stopped;
        }
        if set
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
            >= 1
        {
            return Status::Ready;
        }
        match self.pod_trouble(deployment).await {
            Some(trouble) => Status::Exited(trouble),
            None => Status::Starting,
        }
    }

    fn admin_url(&self, deployment: &Deployment) -> Option<String> {
        Some(
            self.region
                .admin_url
                .replace("{namespace}", &self.namespace(deployment)),
        )
    }

    fn client_url(&self, deployment: &Deployment) -> Option<String> {
        Some(objects::public_url(deployment))
    }

    async fn registration_secret(&self, deployment: &Deployment) -> Result<String, ProvisionError> {
        let secret = self
            .api::<Secret>(deployment)
            .get_opt(objects::SECRET)
            .await
            .map_err(failed("the Secret could not be read"))?
            .ok_or_else(|| ProvisionError::Failed("the homeserver's Secret is gone".into()))?;
        secret
            .data
            .as_ref()
            .and_then(|data| data.get("secrets.yaml"))
            .and_then(|yaml| registration_secret(&String::from_utf8_lossy(&yaml.0)))
            .ok_or_else(|| ProvisionError::Failed("the Secret holds no registration secret".into()))
    }

    async fn backup(
        &self,
        deployment: &Deployment,
        backup: Uuid,
    ) -> Result<Option<u64>, ProvisionError> {
        let class = self.snapshot_class()?;
        let (snapshots, resource) = self.snapshots(deployment);
        let name = snapshot_name(backup);
        let mut snapshot = DynamicObject::new(&name, &resource).data(json!({
            "spec": {
                "volumeSnapshotClassName": class,
                "source": { "persistentVolumeClaimName": objects::DATA_CLAIM },
            }
        }));
        snapshot.metadata.labels = Some(objects::labels(deployment));
        // 409: asked for before (the job asks again while it is being made).
        allowing(
            409,
            snapshots.create(&PostParams::default(), &snapshot).await,
            "the volume snapshot could not be made",
        )?;
        // One look: a snapshot the cluster has not finished is looked at again on the job's
        // next run, so no job waits on a slow storage driver.
        let snapshot = snapshots
            .get_opt(&name)
            .await
            .map_err(failed("the volume snapshot could not be read"))?
            .ok_or_else(|| ProvisionError::Failed("the volume snapshot disappeared".into()))?;
        let Some(status) = snapshot.data.get("status") else {
            return Ok(None);
        };
        if let Some(size) = ready_size(Some(status)) {
            return Ok(Some(size));
        }
        match status.pointer("/error/message").and_then(|m| m.as_str()) {
            Some(message) => Err(ProvisionError::Failed(format!(
                "the volume snapshot failed: {message}"
            ))),
            None => Ok(None),
        }
    }

    async fn restore(&self, deployment: &Deployment, backup: Uuid) -> Result<bool, ProvisionError> {
        self.snapshot_class()?;
        let (snapshots, _) = self.snapshots(deployment);
        let name = snapshot_name(backup);
        let snapshot = snapshots
            .get_opt(&name)
            .await
            .map_err(failed("the volume snapshot could not be read"))?;
        let size = ready_size(snapshot.as_ref().and_then(|s| s.data.get("status")))
            .ok_or_else(|| ProvisionError::Failed("the backup is incomplete or gone".into()))?;
        let snapshot_gb = u32::try_from(size.div_ceil(1 << 30)).unwrap_or(u32::MAX);
        // In steps, one per supervisor tick: the old volume is deleted (Kubernetes keeps it
        // until the stopped pod is gone), then a new one is made from the snapshot, which the
        // StatefulSet's pod takes by its name when it starts again. Which homeservers are past
        // the deletion is remembered here; after a portal restart the restore starts over.
        let claims = self.api::<PersistentVolumeClaim>(deployment);
        let current = claims
            .get_opt(objects::DATA_CLAIM)
            .await
            .map_err(failed("the data volume could not be read"))?;
        let deleting = || {
            self.restoring
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&deployment.id)
        };
        match current {
            Some(claim) if claim.metadata.deletion_timestamp.is_some() => Ok(false),
            Some(_) if deleting() => Ok(false),
            Some(_) => {
                allowing(
                    404,
                    claims
                        .delete(objects::DATA_CLAIM, &DeleteParams::default())
                        .await,
                    "the data volume could not be deleted",
                )?;
                self.old_volume_deleted(deployment.id, true);
                Ok(false)
            }
            None => {
                let live = self.stateful_set(deployment).await?;
                let mut claim = ClaimTemplate::kept_or_new(live.as_ref(), &self.region, deployment);
                claim.gb = claim.gb.max(deployment.size.storage_gb).max(snapshot_gb);
                let made = objects::restored_claim(&self.region, deployment, &name, &claim);
                allowing(
                    409,
                    claims.create(&PostParams::default(), &made).await,
                    "the data volume could not be made from the backup",
                )?;
                self.old_volume_deleted(deployment.id, false);
                Ok(true)
            }
        }
    }

    async fn delete_backup(
        &self,
        deployment: &Deployment,
        backup: Uuid,
    ) -> Result<(), ProvisionError> {
        let (snapshots, _) = self.snapshots(deployment);
        let deleted = snapshots
            .delete(&snapshot_name(backup), &DeleteParams::default())
            .await;
        allowing(404, deleted, "the volume snapshot could not be deleted")
    }

    fn needs_port(&self) -> bool {
        false
    }

    fn stops_with_the_portal(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn storage_quantities_are_read_in_bytes() {
        assert_eq!(bytes("10Gi"), Some(10 << 30));
        assert_eq!(bytes("500M"), Some(500_000_000));
        assert_eq!(bytes("1073741824"), Some(1 << 30));
        assert_eq!(bytes("10Xi"), None);
        assert_eq!(bytes("Gi"), None);
    }
}
