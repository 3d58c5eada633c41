//! The Kubernetes objects of one homeserver, built from its deployment and its region's
//! settings. Pure: the same inputs give the same objects (the golden files check them).
//!
//! Per homeserver: a Namespace labelled with customer, homeserver and region; a Secret the
//! portal generates once (Synapse's secrets and signing key); a ConfigMap (Synapse's
//! configuration); a StatefulSet of one Synapse with a volume from the region's storage class
//! and the plan's resources; a Service; an Ingress for its host names, with a certificate from
//! cert-manager.

use domain::homeservers::{
    provisioner::Deployment,
    regions::KubernetesRegion,
    synapse_config::{self, Listener},
};
use k8s_openapi::{
    api::{
        apps::v1::{StatefulSet, StatefulSetSpec},
        core::v1::{
            Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort,
            HTTPGetAction, Namespace, PersistentVolumeClaim, PersistentVolumeClaimSpec,
            PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
            SeccompProfile, Secret, SecretVolumeSource, SecurityContext, Service, ServicePort,
            ServiceSpec, TypedLocalObjectReference, Volume, VolumeMount,
            VolumeResourceRequirements,
        },
        networking::v1::{
            HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
            IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity, apis::meta::v1::LabelSelector, apis::meta::v1::ObjectMeta,
        util::intstr::IntOrString,
    },
    ByteString,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "matrix-portal";
/// The StatefulSet, Service, Ingress and container of every homeserver.
pub const SYNAPSE: &str = "synapse";
pub const CONFIG_MAP: &str = "synapse-config";
pub const SECRET: &str = "synapse-secrets";
/// The volume claim of the StatefulSet's one pod (`<template>-<set>-<ordinal>`).
pub const DATA_CLAIM: &str = "data-synapse-0";
/// The pod of the StatefulSet.
pub const POD: &str = "synapse-0";
/// The TLS secret cert-manager fills for the Ingress.
pub const TLS_SECRET: &str = "synapse-tls";
/// The pod template annotation that holds the configuration's SHA-256: a changed
/// configuration changes the template, and Kubernetes replaces the pod.
pub const CONFIG_HASH: &str = "matrix-portal/config-sha256";
/// The port Synapse listens on in its pod.
pub const PORT: i32 = 8008;
/// The user and group of Synapse's container image.
const SYNAPSE_UID: i64 = 991;
/// Where the pod mounts its volume, configuration and secrets.
const DATA: &str = "/data";
const CONFIG: &str = "/config";
const SECRETS: &str = "/secrets";
/// The API group of volume snapshots (the CSI snapshot controller's).
pub const SNAPSHOT_GROUP: &str = "snapshot.storage.k8s.io";

/// The namespace of a homeserver: the region's prefix and its id.
pub fn namespace_name(region: &KubernetesRegion, id: Uuid) -> String {
    format!("{}{id}", region.namespace_prefix)
}

/// The labels of every object of a homeserver.
pub fn labels(deployment: &Deployment) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), SYNAPSE.into()),
        ("app.kubernetes.io/managed-by".into(), FIELD_MANAGER.into()),
        (
            "matrix-portal/customer".into(),
            deployment.customer_id.to_string(),
        ),
        ("matrix-portal/homeserver".into(), deployment.id.to_string()),
        ("matrix-portal/region".into(), deployment.region.clone()),
    ])
}

/// What selects the homeserver's pod.
fn selector(deployment: &Deployment) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), SYNAPSE.into()),
        ("matrix-portal/homeserver".into(), deployment.id.to_string()),
    ])
}

fn meta(name: &str, namespace: &str, deployment: &Deployment) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        labels: Some(labels(deployment)),
        ..ObjectMeta::default()
    }
}

/// Where clients reach the homeserver: PORTAL_HOMESERVER_URL's pattern, or its server name
/// over HTTPS.
pub fn public_url(deployment: &Deployment) -> String {
    deployment
        .public_url
        .clone()
        .unwrap_or_else(|| format!("https://{}", deployment.server_name))
}

/// The host names the Ingress serves: the public URL's host and the server name (where
/// other servers look for `/.well-known/matrix/server`).
pub fn hosts(deployment: &Deployment) -> Vec<String> {
    let url = public_url(deployment);
    let host = url
        .split_once("://")
        .map_or(url.as_str(), |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_string();
    let mut hosts = vec![host];
    if !hosts.contains(&deployment.server_name) {
        hosts.push(deployment.server_name.clone());
    }
    hosts
}

/// Synapse's configuration (without its secrets, which come from the Secret as a second
/// `-c` file).
pub fn homeserver_yaml(deployment: &Deployment) -> String {
    let public = public_url(deployment);
    let served = Deployment {
        public_url: Some(public.clone()),
        ..deployment.clone()
    };
    format!(
        "# Written by the portal; the secrets are in {SECRETS}/secrets.yaml.\n\
         server_name: \"{name}\"\n\
         pid_file: {DATA}/homeserver.pid\n\
         database:\n\
         \x20 name: sqlite3\n\
         \x20 args:\n\
         \x20   database: {DATA}/homeserver.db\n\
         media_store_path: {DATA}/media_store\n\
         signing_key_path: {SECRETS}/signing.key\n\
         {settings}",
        name = deployment.server_name,
        settings = synapse_config::portal_settings(
            &served,
            &Listener {
                port: PORT as u16,
                bind: "0.0.0.0",
                public_url: &public,
            }
        ),
    )
}

/// The SHA-256 of the configuration, in hex.
pub fn config_hash(deployment: &Deployment) -> String {
    hex::encode(Sha256::digest(homeserver_yaml(deployment).as_bytes()))
}

/// Synapse's secrets, generated once by the portal and never rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub registration_shared_secret: String,
    pub macaroon_secret_key: String,
    pub form_secret: String,
    /// `ed25519 <key id> <unpadded base64 seed>`, as Synapse writes its signing keys.
    pub signing_key: String,
}

impl Generated {
    /// New secrets from the operating system's random source.
    pub fn new() -> Self {
        use base64::Engine;
        use rand::{distributions::Alphanumeric, rngs::OsRng, Rng, RngCore};
        let secret = || -> String {
            OsRng
                .sample_iter(&Alphanumeric)
                .take(48)
                .map(char::from)
                .collect()
        };
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        let key_id: String = OsRng
            .sample_iter(&Alphanumeric)
            .take(4)
            .map(char::from)
            .collect();
        Self {
            registration_shared_secret: secret(),
            macaroon_secret_key: secret(),
            form_secret: secret(),
            signing_key: format!(
                "ed25519 a_{key_id} {}\n",
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(seed)
            ),
        }
    }

    pub fn secrets_yaml(&self) -> String {
        format!(
            "registration_shared_secret: \"{}\"\nmacaroon_secret_key: \"{}\"\nform_secret: \"{}\"\n",
            self.registration_shared_secret, self.macaroon_secret_key, self.form_secret
        )
    }
}

impl Default for Generated {
    fn default() -> Self {
        Self::new()
    }
}

pub fn namespace(region: &KubernetesRegion, deployment: &Deployment) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(namespace_name(region, deployment.id)),
            labels: Some(labels(deployment)),
            annotations: Some(BTreeMap::from([(
                "matrix-portal/server-name".into(),
                deployment.server_name.clone(),
            )])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

pub fn secret(region: &KubernetesRegion, deployment: &Deployment, generated: &Generated) -> Secret {
    let namespace = namespace_name(region, deployment.id);
    Secret {
        metadata: meta(SECRET, &namespace, deployment),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            (
                "secrets.yaml".into(),
                ByteString(generated.secrets_yaml().into_bytes()),
            ),
            (
                "signing.key".into(),
                ByteString(generated.signing_key.clone().into_bytes()),
            ),
        ])),
        ..Secret::default()
    }
}

pub fn config_map(region: &KubernetesRegion, deployment: &Deployment) -> ConfigMap {
    let namespace = namespace_name(region, deployment.id);
    ConfigMap {
        metadata: meta(CONFIG_MAP, &namespace, deployment),
        data: Some(BTreeMap::from([(
            "homeserver.yaml".into(),
            homeserver_yaml(deployment),
        )])),
        ..ConfigMap::default()
    }
}

fn storage(gb: u32) -> Quantity {
    Quantity(format!("{gb}Gi"))
}

fn health_probe(period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/health".into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

/// The volume template of a StatefulSet: Kubernetes never lets it change after creation, so
/// an existing StatefulSet keeps its own (a bigger plan grows the claim itself instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimTemplate {
    pub storage_class: String,
    pub gb: u32,
}

impl ClaimTemplate {
    /// A new homeserver's: the region's storage class, the plan's storage.
    pub fn new(region: &KubernetesRegion, deployment: &Deployment) -> Self {
        Self {
            storage_class: region.storage_class.clone(),
            gb: deployment.size.storage_gb,
        }
    }

    /// The template of `existing` where there is one, else a new homeserver's.
    pub fn kept_or_new(
        existing: Option<&StatefulSet>,
        region: &KubernetesRegion,
        deployment: &Deployment,
    ) -> Self {
        existing
            .and_then(Self::of)
            .unwrap_or_else(|| Self::new(region, deployment))
    }

    /// The template of an existing StatefulSet.
    pub fn of(set: &StatefulSet) -> Option<Self> {
        let template = set
            .spec
            .as_ref()?
            .volume_claim_templates
            .as_ref()?
            .first()?;
        let spec = template.spec.as_ref()?;
        let storage = spec.resources.as_ref()?.requests.as_ref()?.get("storage")?;
        Some(Self {
            storage_class: spec.storage_class_name.clone()?,
            gb: u32::try_from(crate::bytes(&storage.0)? >> 30).ok()?,
        })
    }
}

/// What the StatefulSet of a deployment is, in one hash (its metadata holds it, so a changed
/// plan, configuration or image is seen with one read).
pub fn spec_hash(region: &KubernetesRegion, deployment: &Deployment) -> String {
    let set = stateful_set(
        region,
        deployment,
        1,
        &ClaimTemplate::new(region, deployment),
    );
    let json = serde_json::to_vec(&set.spec).expect("a StatefulSet serializes");
    hex::encode(Sha256::digest(json))
}

/// The annotation of the StatefulSet that holds [`spec_hash`].
pub const SPEC_HASH: &str = "matrix-portal/spec-sha256";

/// The StatefulSet with `replicas` Synapse pods (1 running, 0 suspended) and the volume
/// template `claim`.
pub fn stateful_set(
    region: &KubernetesRegion,
    deployment: &Deployment,
    replicas: i32,
    claim: &ClaimTemplate,
) -> StatefulSet {
    let namespace = namespace_name(region, deployment.id);
    let resources = deployment.size.resources;
    let memory = Quantity(format!("{}Mi", resources.memory_mib));
    let container = Container {
        name: SYNAPSE.into(),
        image: Some(region.image.clone()),
        command: Some(
            [
                "python",
                "-m",
                "synapse.app.homeserver",
                "-c",
                "/config/homeserver.yaml",
                "-c",
                "/secrets/secrets.yaml",
            ]
            .map(String::from)
            .to_vec(),
        ),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: PORT,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                (
                    "cpu".into(),
                    Quantity(format!("{}m", resources.cpu_millicores)),
                ),
                ("memory".into(), memory.clone()),
            ])),
            limits: Some(BTreeMap::from([("memory".into(), memory)])),
            ..ResourceRequirements::default()
        }),
        // Up to five minutes for a first start (database migrations), then /health.
        startup_probe: Some(health_probe(5, 60)),
        readiness_probe: Some(health_probe(5, 3)),
        liveness_probe: Some(health_probe(15, 4)),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "data".into(),
                mount_path: DATA.into(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "secrets".into(),
                mount_path: SECRETS.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    let template_meta = ObjectMeta {
        labels: Some(labels(deployment)),
        annotations: Some(BTreeMap::from([(
            CONFIG_HASH.into(),
            config_hash(deployment),
        )])),
        ..ObjectMeta::default()
    };
    StatefulSet {
        metadata: meta(SYNAPSE, &namespace, deployment),
        spec: Some(StatefulSetSpec {
            // Replaced pods do not wait for broken ones (a fixed configuration or image takes
            // effect even while the old pod crashes).
            pod_management_policy: Some("Parallel".into()),
            replicas: Some(replicas),
            service_name: Some(SYNAPSE.into()),
            selector: LabelSelector {
                match_labels: Some(selector(deployment)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(template_meta),
                spec: Some(PodSpec {
                    containers: vec![container],
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_user: Some(SYNAPSE_UID),
                        run_as_group: Some(SYNAPSE_UID),
                        fs_group: Some(SYNAPSE_UID),
                        // Ownership is fixed once, not walked through the media on every start.
                        fs_group_change_policy: Some("OnRootMismatch".into()),
                        run_as_non_root: Some(true),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    volumes: Some(vec![
                        Volume {
                            name: "config".into(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: CONFIG_MAP.into(),
                                ..ConfigMapVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        Volume {
                            name: "secrets".into(),
                            secret: Some(SecretVolumeSource {
                                secret_name: Some(SECRET.into()),
                                // Readable by Synapse's group only.
                                default_mode: Some(0o440),
                                ..SecretVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                    ]),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("data".into()),
                    labels: Some(labels(deployment)),
                    ..ObjectMeta::default()
                },
                spec: Some(claim_spec(&claim.storage_class, claim.gb)),
                ..PersistentVolumeClaim::default()
            }]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

fn claim_spec(storage_class: &str, gb: u32) -> PersistentVolumeClaimSpec {
    PersistentVolumeClaimSpec {
        access_modes: Some(vec!["ReadWriteOnce".into()]),
        storage_class_name: Some(storage_class.into()),
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([("storage".into(), storage(gb))])),
            ..VolumeResourceRequirements::default()
        }),
        ..PersistentVolumeClaimSpec::default()
    }
}

/// The claim of a restored homeserver: the StatefulSet's claim, filled from volume snapshot
/// `snapshot`.
pub fn restored_claim(
    region: &KubernetesRegion,
    deployment: &Deployment,
    snapshot: &str,
    claim: &ClaimTemplate,
) -> PersistentVolumeClaim {
    let namespace = namespace_name(region, deployment.id);
    PersistentVolumeClaim {
        metadata: meta(DATA_CLAIM, &namespace, deployment),
        spec: Some(PersistentVolumeClaimSpec {
            data_source: Some(TypedLocalObjectReference {
                api_group: Some(SNAPSHOT_GROUP.into()),
                kind: "VolumeSnapshot".into(),
                name: snapshot.into(),
            }),
            ..claim_spec(&claim.storage_class, claim.gb)
        }),
        ..PersistentVolumeClaim::default()
    }
}

pub fn service(region: &KubernetesRegion, deployment: &Deployment) -> Service {
    let namespace = namespace_name(region, deployment.id);
    Service {
        metadata: meta(SYNAPSE, &namespace, deployment),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector(deployment)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: PORT,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The paths clients and other servers use; Synapse's admin API is not among them (the
/// portal reaches it inside the cluster).
const PUBLIC_PATHS: [&str; 3] = ["/_matrix", "/_synapse/client", "/.well-known/matrix"];

pub fn ingress(region: &KubernetesRegion, deployment: &Deployment) -> Ingress {
    let namespace = namespace_name(region, deployment.id);
    let hosts = hosts(deployment);
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: SYNAPSE.into(),
            port: Some(ServiceBackendPort {
                name: Some("http".into()),
                ..ServiceBackendPort::default()
            }),
        }),
        ..IngressBackend::default()
    };
    let rules = hosts
        .iter()
        .map(|host| IngressRule {
            host: Some(host.clone()),
            http: Some(HTTPIngressRuleValue {
                paths: PUBLIC_PATHS
                    .iter()
                    .map(|path| HTTPIngressPath {
                        path: Some((*path).into()),
                        path_type: "Prefix".into(),
                        backend: backend.clone(),
                    })
                    .collect(),
            }),
        })
        .collect();
    let mut metadata = meta(SYNAPSE, &namespace, deployment);
    let mut annotations = region.ingress_annotations.clone();
    annotations.insert(
        "cert-manager.io/cluster-issuer".into(),
        region.cluster_issuer.clone(),
    );
    metadata.annotations = Some(annotations);
    Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: Some(region.ingress_class.clone()),
            tls: Some(vec![IngressTLS {
                hosts: Some(hosts.clone()),
                secret_name: Some(TLS_SECRET.into()),
            }]),
            rules: Some(rules),
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    }
}

/// Every object of a homeserver, as the cluster is to hold them (for the golden files).
pub fn all(
    region: &KubernetesRegion,
    deployment: &Deployment,
    generated: &Generated,
) -> Vec<serde_json::Value> {
    let value =
        |v: Result<serde_json::Value, serde_json::Error>| v.expect("Kubernetes objects serialize");
    vec![
        value(serde_json::to_value(namespace(region, deployment))),
        value(serde_json::to_value(secret(region, deployment, generated))),
        value(serde_json::to_value(config_map(region, deployment))),
        value(serde_json::to_value(stateful_set(
            region,
            deployment,
            1,
            &ClaimTemplate::new(region, deployment),
        ))),
        value(serde_json::to_value(service(region, deployment))),
        value(serde_json::to_value(ingress(region, deployment))),
        value(serde_json::to_value(restored_claim(
            region,
            deployment,
            "backup-00000000-0000-0000-0000-000000000000",
            &ClaimTemplate::new(region, deployment),
        ))),
    ]
}
