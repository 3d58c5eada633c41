//! The Kubernetes driver's requests, answered one by one by the test through kube's mock client
//! (a tower-test service in place of the API server): each test says which requests the
//! driver must make, in which order and with what, and what the cluster answers.

mod common;

use common::{cluster, deployment};
use domain::homeservers::provisioner::{Deployment, Provisioner, Status};
use http::{Request, Response};
use kube::client::Body;
use kubernetes_driver::{objects, KubernetesDriver};
use serde_json::{json, Value};
use std::{sync::Arc, time::Duration};
use tower_test::mock::{Handle, SendResponse};
use uuid::Uuid;

struct Cluster(Handle<Request<Body>, Response<Body>>);

/// One request of the driver, waiting for its answer.
struct Call {
    method: String,
    path: String,
    query: String,
    content_type: String,
    body: Value,
    respond: SendResponse<Response<Body>>,
}

impl Cluster {
    async fn next(&mut self) -> Call {
        let (request, respond) =
            tokio::time::timeout(Duration::from_secs(5), self.0.next_request())
                .await
                .expect("the driver makes another request")
                .expect("the client is alive");
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("the request body");
        Call {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            content_type: parts
                .headers
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            respond,
        }
    }

    /// The next request, which must be `method` on `path`.
    async fn expect(&mut self, method: &str, path: &str) -> Call {
        let call = self.next().await;
        assert_eq!(
            (call.method.as_str(), call.path.as_str()),
            (method, path),
            "the driver's next request"
        );
        call
    }

    /// The next request, which must be a server-side apply of `path` by the portal's field
    /// manager; answered with what was applied.
    async fn apply(&mut self, path: &str) -> Value {
        let call = self.expect("PATCH", path).await;
        assert_eq!(call.content_type, "application/apply-patch+yaml");
        assert!(
            call.query.contains("fieldManager=matrix-portal"),
            "{}",
            call.query
        );
        assert!(call.query.contains("force=true"), "{}", call.query);
        let body = call.body.clone();
        call.reply(200, body.clone());
        body
    }
}

impl Cluster {
    /// The end of every apply: the Service, then the Ingress.
    async fn service_and_ingress(&mut self, ns: &str) {
        self.apply(&format!("/api/v1/namespaces/{ns}/services/synapse"))
            .await;
        self.apply(&format!(
            "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/synapse"
        ))
        .await;
    }

    /// The start of an apply to a homeserver that has its Secret: the namespace, the Secret
    /// looked for (and kept), the ConfigMap; the ConfigMap applied is returned.
    async fn apply_up_to_the_configuration(&mut self, ns: &str) -> Value {
        self.apply(&format!("/api/v1/namespaces/{ns}")).await;
        self.secret_exists(ns).await;
        self.apply(&format!(
            "/api/v1/namespaces/{ns}/configmaps/synapse-config"
        ))
        .await
    }

    /// An apply over a StatefulSet that exists as `existing`: it is read, the apply goes up to
    /// the configuration, it is read again and applied. Returns the ConfigMap and the
    /// StatefulSet applied.
    async fn apply_over(&mut self, ns: &str, existing: Value) -> (Value, Value) {
        let set_path = format!("/apis/apps/v1/namespaces/{ns}/statefulsets/synapse");
        self.expect("GET", &set_path)
            .await
            .reply(200, existing.clone());
        let config = self.apply_up_to_the_configuration(ns).await;
        self.expect("GET", &set_path).await.reply(200, existing);
        (config, self.apply(&set_path).await)
    }

    /// The Secret is looked for and exists (so none is made).
    async fn secret_exists(&mut self, ns: &str) {
        self.expect("GET", &format!("/api/v1/namespaces/{ns}/secrets/synapse-secrets"))
            .await
            .reply(
                200,
                json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "synapse-secrets" } }),
            );
    }
}

impl Call {
    fn reply(self, status: u16, body: Value) {
        let respond = self.respond;
        respond.send_response(
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
    }

    fn echo(self) {
        let body = self.body.clone();
        self.reply(200, body);
    }

    fn not_found(self) {
        let name = self.path.rsplit('/').next().unwrap_or_default().to_string();
        self.reply(
            404,
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("{name:?} not found"), "reason": "NotFound", "code": 404,
            }),
        );
    }
}

fn driver(region: &str) -> (Arc<KubernetesDriver>, Cluster) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let driver = KubernetesDriver::with_client(client, cluster(region));
    (Arc::new(driver), Cluster(handle))
}

/// Runs `call` on the driver while the test answers its requests.
fn run<T: Send + 'static>(
    driver: &Arc<KubernetesDriver>,
    deployment: &Deployment,
    call: impl for<'a> FnOnce(&'a KubernetesDriver, &'a Deployment) -> futures_like::Boxed<'a, T>
        + Send
        + 'static,
) -> tokio::task::JoinHandle<T> {
    let driver = driver.clone();
    let deployment = deployment.clone();
    tokio::spawn(async move { call(&driver, &deployment).await })
}

/// A boxed future without a futures dependency.
mod futures_like {
    pub type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

async fn finished<T>(task: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the driver finished without another request")
        .expect("the driver did not panic")
}

fn ns(deployment: &Deployment) -> String {
    format!("matrix-{}", deployment.id)
}

/// An existing StatefulSet as the cluster returns it.
/// An existing StatefulSet of `deployment` as the cluster returns it (applied by the portal in
/// the region as the test names it: `eu-central`, with the configured image).
fn existing_set(deployment: &Deployment, replicas: i32, ready: i32, claim_gb: u32) -> Value {
    existing_set_in(
        &cluster("eu-central"),
        deployment,
        replicas,
        ready,
        claim_gb,
    )
}

fn existing_set_in(
    region: &domain::homeservers::regions::KubernetesRegion,
    deployment: &Deployment,
    replicas: i32,
    ready: i32,
    claim_gb: u32,
) -> Value {
    let claim = objects::ClaimTemplate {
        storage_class: region.storage_class.clone(),
        gb: claim_gb,
    };
    let mut set =
        serde_json::to_value(objects::stateful_set(region, deployment, replicas, &claim)).unwrap();
    set["metadata"]["annotations"] =
        json!({ objects::SPEC_HASH: objects::spec_hash(region, deployment) });
    set["status"] = json!({ "replicas": replicas, "readyReplicas": ready });
    set
}

fn claim(gb: u32) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": { "name": objects::DATA_CLAIM },
        "spec": { "resources": { "requests": { "storage": format!("{gb}Gi") } } },
    })
}

#[tokio::test]
async fn provisioning_applies_every_object_with_one_field_manager_and_makes_the_secret_once() {
    let (driver, mut cluster) = driver("eu-central");
    let deployment = deployment("starter", "eu-central");
    let ns = ns(&deployment);

    // A new homeserver: every object, the Secret made, the StatefulSet at no replica.
    let task = run(&driver, &deployment, |d, dep| Box::pin(d.create(dep)));
    let namespace = cluster.apply(&format!("/api/v1/namespaces/{ns}")).await;
    assert_eq!(
        namespace["metadata"]["labels"]["matrix-portal/homeserver"],
        deployment.id.to_string()
    );
    cluster
        .expect(
            "GET",
            &format!("/api/v1/namespaces/{ns}/secrets/synapse-secrets"),
        )
        .await
        .not_found();
    let made = cluster
        .expect("POST", &format!("/api/v1/namespaces/{ns}/secrets"))
        .await;
    let secret = made.body.clone();
    made.echo();
    let data = |key: &str| {
        use base64::Engine;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(secret["data"][key].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    let secrets_yaml = data("secrets.yaml");
    assert!(secrets_yaml.contains("registration_shared_secret: \""));
    assert!(data("signing.key").starts_with("ed25519 a_"));
    let config = cluster
        .apply(&format!(
            "/api/v1/namespaces/{ns}/configmaps/synapse-config"
        ))
        .await;
    assert!(config["data"]["homeserver.yaml"]
        .as_str()
        .unwrap()
        .contains("server_name: \"starter-team.eu.matrix.example\""));
    let set_path = format!("/apis/apps/v1/namespaces/{ns}/statefulsets/synapse");
    cluster.expect("GET", &set_path).await.not_found();
    let set = cluster.apply(&set_path).await;
    assert_eq!(set["spec"]["replicas"], 0, "made, not started");
    assert_eq!(
        set["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/element-hq/synapse:v1.163.2"
    );
    cluster.service_and_ingress(&ns).await;
    finished(task).await.expect("created");

    // Starting it: the Secret is there and kept, the StatefulSet gets its one replica.
    let task = run(&driver, &deployment, |d, dep| Box::pin(d.start(dep)));
    cluster.apply(&format!("/api/v1/namespaces/{ns}")).await;
    cluster
        .expect(
            "GET",
            &format!("/api/v1/namespaces/{ns}/secrets/synapse-secrets"),
        )
        .await
        .reply(200, secret.clone());
    cluster
        .apply(&format!(
            "/api/v1/namespaces/{ns}/configmaps/synapse-config"
        ))
        .await;
    cluster
        .expect("GET", &set_path)
        .await
        .reply(200, existing_set(&deployment, 0, 0, 10));
    let set = cluster.apply(&set_path).await;
    assert_eq!(set["spec"]["replicas"], 1);
    cluster.service_and_ingress(&ns).await;
    finished(task).await.expect("started");

    // The registration secret is the one made.
    let task = run(&driver, &deployment, |d, dep| {
        Box::pin(d.registration_secret(dep))
    });
    cluster
        .expect(
            "GET",
            &format!("/api/v1/namespaces/{ns}/secrets/synapse-secrets"),
        )
        .await
        .reply(200, secret.clone());
    let read = finished(task).await.expect("read");
    assert!(secrets_yaml.contains(&format!("registration_shared_secret: \"{read}\"")));
    assert_eq!(read.len(), 48);

    // The address the portal uses inside the cluster, and the one clients see.
    assert_eq!(
        driver.admin_url(&deployment).unwrap(),
        format!("http://synapse.{ns}.svc:8008")
    );
    assert_eq!(
        driver.client_url(&deployment).unwrap(),
        "https://starter-team.eu.matrix.example"
    );
    assert!(!driver.needs_port());
    assert!(
        !driver.stops_with_the_portal(),
        "homeservers in a cluster run on while the portal restarts"
    );
}

#[tokio::test]
async fn suspension_scales_to_zero_and_a_bigger_plan_grows_the_volume() {
    let (driver, mut cluster) = driver("eu-central");
    // Provisioned on Starter (10 GiB), now on Business (100 GiB).
    let starter = deployment("starter", "eu-central");
    let business = Deployment {
        size: deployment("business", "eu-central").size,
        ..starter.clone()
    };
    let ns = ns(&business);
    let set_path = format!("/apis/apps/v1/namespaces/{ns}/statefulsets/synapse");
    let claim_path = format!("/api/v1/namespaces/{ns}/persistentvolumeclaims/data-synapse-0");

    let task = run(&driver, &business, |d, dep| Box::pin(d.stop(dep)));
    let (_, set) = cluster
        .apply_over(&ns, existing_set(&starter, 1, 1, 10))
        .await;
    assert_eq!(set["spec"]["replicas"], 0, "suspended");
    assert_eq!(
        set["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"], "10Gi",
        "the template Kubernetes will not change stays as it was"
    );
    assert_eq!(
        set["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"],
        "2048Mi"
    );
    // The claim grows after the StatefulSet is applied (where the class cannot expand, the
    // homeserver still stops).
    cluster
        .expect("GET", &claim_path)
        .await
        .reply(200, claim(10));
    let grow = cluster.expect("PATCH", &claim_path).await;
    assert_eq!(grow.content_type, "application/merge-patch+json");
    assert_eq!(
        grow.body,
        json!({ "spec": { "resources": { "requests": { "storage": "100Gi" } } } })
    );
    grow.reply(
        422,
        json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "only dynamically provisioned pvc can be resized", "reason": "Invalid", "code": 422 }),
    );
    cluster.service_and_ingress(&ns).await;
    finished(task).await.expect("stopped");

    // Stopping one that is stopped, or whose namespace is gone, is one read and nothing more.
    let task = run(&driver, &business, |d, dep| Box::pin(d.stop(dep)));
    cluster
        .expect("GET", &set_path)
        .await
        .reply(200, existing_set(&starter, 0, 0, 10));
    finished(task).await.expect("stopped already");
    let task = run(&driver, &business, |d, dep| Box::pin(d.stop(dep)));
    cluster.expect("GET", &set_path).await.not_found();
    finished(task).await.expect("nothing to stop");
}

#[tokio::test]
async fn status_follows_the_statefulset_and_its_pod() {
    let (driver, mut cluster) = driver("eu-central");
    let deployment = deployment("starter", "eu-central");
    let ns = ns(&deployment);
    let set_path = format!("/apis/apps/v1/namespaces/{ns}/statefulsets/synapse");
    let pod_path = format!("/api/v1/namespaces/{ns}/pods/synapse-0");
    let pod = |state: Value| {
        json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "synapse-0" },
            "status": { "containerStatuses": [{
                "name": "synapse", "image": "synapse", "imageID": "", "ready": false,
                "restartCount": 3, "state": state,
            }] },
        })
    };

    // What the cluster holds (None: no StatefulSet), the pod's state where it is asked for,
    // and the status that makes.
    let exited = Status::Exited("CrashLoopBackOff: back-off 40s restarting".into());
    let cases = [
        (None, None, Status::Absent),
        (Some((0, 0)), None, Status::Stopped),
        (Some((1, 1)), None, Status::Ready),
        (
            Some((1, 0)),
            Some(
                json!({ "waiting": { "reason": "CrashLoopBackOff", "message": "back-off 40s restarting" } }),
            ),
            exited,
        ),
        (
            Some((1, 0)),
            Some(json!({ "waiting": { "reason": "ContainerCreating" } })),
            Status::Starting,
        ),
        (
            Some((1, 0)),
            Some(json!({ "terminated": { "exitCode": 1, "reason": "Error" } })),
            Status::Exited("exit code 1 (Error)".into()),
        ),
    ];
    let unschedulable = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "synapse-0" },
        "status": { "phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient memory.",
        }] },
    });
    for (set, pod_state, expected) in cases {
        let task = run(&driver, &deployment, |d, dep| Box::pin(d.status(dep)));
        let call = cluster.expect("GET", &set_path).await;
        match set {
            None => call.not_found(),
            Some((replicas, ready)) => {
                call.reply(200, existing_set(&deployment, replicas, ready, 10))
            }
        }
        if let Some(state) = pod_state {
            cluster
                .expect("GET", &pod_path)
                .await
                .reply(200, pod(state));
        }
        assert_eq!(finished(task).await, expected);
    }
    // A pod no node takes says why.
    let task = run(&driver, &deployment, |d, dep| Box::pin(d.status(dep)));
    cluster
        .expect("GET", &set_path)
        .await
        .reply(200, existing_set(&deployment, 1, 0, 10));
    cluster
        .expect("GET", &pod_path)
        .await
        .reply(200, unschedulable);
    assert_eq!(
        finished(task).await,
        Status::Exited("Unschedulable: 0/3 nodes are available: 3 Insufficient memory.".into())
    );
}

#[tokio::test]
async fn reconfiguring_applies_only_a_changed_configuration_or_image() {
    let (driver, mut cluster) = driver("eu-central");
    let deployment = deployment("starter", "eu-central");
    let ns = ns(&deployment);
    let set_path = format!("/apis/apps/v1/namespaces/{ns}/statefulsets/synapse");

    // Running with this configuration and image: nothing to do.
    let task = run(&driver, &deployment, |d, dep| Box::pin(d.reconfigure(dep)));
    cluster
        .expect("GET", &set_path)
        .await
        .reply(200, existing_set(&deployment, 1, 1, 10));
    assert!(!finished(task).await.unwrap());

    // Suspended: nothing to do either (it starts with the new settings).
    let mut guests = deployment.clone();
    guests.settings.guest_access = true;
    let task = run(&driver, &guests, |d, dep| Box::pin(d.reconfigure(dep)));
    cluster
        .expect("GET", &set_path)
        .await
        .reply(200, existing_set(&deployment, 0, 0, 10));
    assert!(!finished(task).await.unwrap());

    // Running with the old configuration: applied again, with the new configuration's hash.
    let task = run(&driver, &guests, |d, dep| Box::pin(d.reconfigure(dep)));
    let (config, set) = cluster
        .apply_over(&ns, existing_set(&deployment, 1, 1, 10))
        .await;
    assert!(config["data"]["homeserver.yaml"]
        .as_str()
        .unwrap()
        .contains("allow_guest_access: true"));
    assert_eq!(
        set["spec"]["template"]["metadata"]["annotations"][objects::CONFIG_HASH],
        objects::config_hash(&guests)
    );
    assert_ne!(
        objects::config_hash(&guests),
        objects::config_hash(&deployment)
    );
    assert_eq!(set["spec"]["replicas"], 1);
    cluster.service_and_ingress(&ns).await;
    assert!(finished(task).await.unwrap());

    // Applied with an older image tag in the regions file: an upgrade, applied too.
    let mut old_region = common::cluster("eu-central");
    old_region.image = "ghcr.io/element-hq/synapse:v1.160.0".into();
    let older = existing_set_in(&old_region, &deployment, 1, 1, 10);
    let task = run(&driver, &deployment, |d, dep| Box::pin(d.reconfigure(dep)));
    let (_, set) = cluster.apply_over(&ns, older).await;
    assert_eq!(
        set["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/element-hq/synapse:v1.163.2"
    );
    cluster.service_and_ingress(&ns).await;
    assert!(finished(task).await.unwrap());

    // A bigger plan on a running homeserver: its resources and volume follow.
    let bigger = Deployment {
        size: common::deployment("business", "eu-central").size,
        ..deployment.clone()
    };
    let task = run(&driver, &bigger, |d, dep| Box::pin(d.reconfigure(dep)));
    let (_, set) = cluster
        .apply_over(&ns, existing_set(&deployment, 1, 1, 10))
        .await;
    assert_eq!(
        set["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "2048Mi"
    );
    let claim_path = format!("/api/v1/namespaces/{ns}/persistentvolumeclaims/data-synapse-0");
    cluster
        .expect("GET", &claim_path)
        .await
        .reply(200, claim(10));
    let grow = cluster.expect("PATCH", &claim_path).await;
    assert_eq!(
        grow.body["spec"]["resources"]["requests"]["storage"],
        "100Gi"
    );
    grow.reply(200, claim(100));
    cluster.service_and_ingress(&ns).await;
    assert!(finished(task).await.unwrap());
}

#[tokio::test]
async fn destroying_deletes_the_namespace_and_a_second_time_is_fine() {
    let (driver, mut cluster) = driver("eu-central");
    let deployment = deployment("starter", "eu-central");
    let ns_path = format!("/api/v1/namespaces/{}", ns(&deployment));
    let task = run(&driver, &deployment, |d, dep| Box::pin(d.destroy(dep)));
    let call = cluster.expect("DELETE", &ns_path).await;
    assert_eq!(call.body["propagationPolicy"], "Background");
    call.reply(
        200,
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns(&deployment) },
                "status": { "phase": "Terminating" } }),
    );
    finished(task).await.expect("deleted");
    let task = run(&driver, &deployment, |d, dep| Box::pin(d.destroy(dep)));
    cluster.expect("DELETE", &ns_path).await.not_found();
    finished(task).await.expect("gone already");
}

#[tokio::test]
async fn backups_are_volume_snapshots_and_a_restore_makes_the_volume_anew() {
    let backup = Uuid::from_u128(0xbac);
    let snapshot = format!("backup-{backup}");

    // A region without a snapshot class refuses, saying why, and asks the cluster nothing.
    let (us, _us_cluster) = driver("us-east");
    let error = us
        .backup(&deployment("starter", "us-east"), backup)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("snapshot_class"), "{error}");

    let (driver, mut cluster) = driver("eu-central");
    let deployment = deployment("starter", "eu-central");
    let ns = ns(&deployment);
    let snapshots = format!("/apis/snapshot.storage.k8s.io/v1/namespaces/{ns}/volumesnapshots");
    let one = format!("{snapshots}/{snapshot}");
    let with_status = |status: Value| {
        json!({
            "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": { "name": snapshot }, "status": status,
        })
    };

    let task = run(&driver, &deployment, move |d, dep| {
        Box::pin(d.backup(dep, backup))
    });
    let made = cluster.expect("POST", &snapshots).await;
    assert_eq!(made.body["metadata"]["name"], snapshot);
    assert_eq!(
        made.body["spec"]["volumeSnapshotClassName"],
        "csi-snapshots"
    );
    assert_eq!(
        made.body["spec"]["source"]["persistentVolumeClaimName"],
        "data-synapse-0"
    );
    made.echo();
    cluster
        .expect("GET", &one)
        .await
        .reply(200, with_status(json!({ "readyToUse": false })));
    assert_eq!(finished(task).await.unwrap(), None, "still being made");

    // The job's next run: the same snapshot (already there), now ready, with its size.
    let task = run(&driver, &deployment, move |d, dep| {
        Box::pin(d.backup(dep, backup))
    });
    let exists = json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                         "message": "already exists", "reason": "AlreadyExists", "code": 409 });
    cluster
        .expect("POST", &snapshots)
        .await
        .reply(409, exists.clone());
    cluster.expect("GET", &one).await.reply(
        200,
        with_status(json!({ "readyToUse": true, "restoreSize": "10Gi" })),
    );
    assert_eq!(finished(task).await.unwrap(), Some(10 << 30));

    // A snapshot the cluster could not take is a failed backup, with the cluster's words.
    let task = run(&driver, &deployment, move |d, dep| {
        Box::pin(d.backup(dep, backup))
    });
    cluster.expect("POST", &snapshots).await.reply(409, exists);
    cluster.expect("GET", &one).await.reply(
        200,
        with_status(json!({ "readyToUse": false, "error": { "message": "the disk is gone" } })),
    );
    let error = finished(task).await.unwrap_err().to_string();
    assert!(error.contains("the disk is gone"), "{error}");

    // Restore, one step a tick: the old volume is deleted; while it goes, nothing more; once
    // it is gone, a new one is made from the snapshot with the StatefulSet's template.
    let claim_path = format!("/api/v1/namespaces/{ns}/persistentvolumeclaims/data-synapse-0");
    let ready = with_status(json!({ "readyToUse": true, "restoreSize": "10Gi" }));
    let task = run(&driver, &deployment, move |d, dep| {
        Box::pin(d.restore(dep, backup))
    });
    cluster.expect("GET", &one).await.reply(200, ready.clone());
    cluster
        .expect("GET", &claim_path)
        .await
        .reply(200, claim(10));
    cluster
        .expect("DELETE", &claim_path)
        .await
        .reply(200, claim(10));
    assert!(!finished(task).await.unwrap(), "under way");
    let task = run(&driver, &deployment, move |d, dep| {
        Box::pin(d.restore(dep, backup))
    });
    cluster.expect("GET", &one).await.reply(200, ready.clone());
    cluster
        .expect("GET", &claim_path)
        .await
        .reply(200, claim(10));
    assert!(
        !finished(task).await.unwrap(),
        "the old volume is still going"
    );
    let task = run(&driver, &deployment, move |d, dep| {
        Box::pin(d.restore(dep, backup))
    });
    cluster.expect("GET", &one).await.reply(200, ready.clone());
    cluster.expect("GET", &claim_path).await.not_found();
    cluster
        .expect(
            "GET",
            &format!("/apis/apps/v1/namespaces/{ns}/statefulsets/synapse"),
        )
        .await
        .reply(200, existing_set(&deployment, 0, 0, 10));
    let made = cluster
        .expect(
            "POST",
            &format!("/api/v1/namespaces/{ns}/persistentvolumeclaims"),
        )
        .await;
    assert_eq!(made.body["metadata"]["name"], "data-synapse-0");
    assert_eq!(made.body["spec"]["dataSource"]["kind"], "VolumeSnapshot");
    assert_eq!(made.body["spec"]["dataSource"]["name"], snapshot);
    assert_eq!(made.body["spec"]["storageClassName"], "fast-ssd");
    made.echo();
    assert!(finished(task).await.unwrap(), "restored");

    // A restore from a snapshot that is not ready is refused before anything is deleted.
    let task = run(&driver, &deployment, move |d, dep| {
        Box::pin(d.restore(dep, backup))
    });
    cluster.expect("GET", &one).await.not_found();
    let error = finished(task).await.unwrap_err().to_string();
    assert!(error.contains("incomplete or gone"), "{error}");

    // Deleting a backup that is gone already is fine.
    let task = run(&driver, &deployment, move |d, dep| {
        Box::pin(d.delete_backup(dep, backup))
    });
    cluster.expect("DELETE", &one).await.not_found();
    finished(task).await.expect("deleted");
}
