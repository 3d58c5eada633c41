//! What the Kubernetes driver's tests share: two regions, and homeservers of the sample plans.
#![allow(dead_code)]

use domain::{
    homeservers::{
        provisioner::{Deployment, Size},
        regions::{KubernetesRegion, RegionCatalog},
        settings::{Registration, Settings},
    },
    plans::PlanCatalog,
};
use kubernetes_driver::objects::Generated;
use uuid::Uuid;

pub const REGIONS: &str = r#"
[[region]]
id = "eu-central"
name = "Central Europe"
city = "Frankfurt"
country = "DE"
driver = "kubernetes"

[region.kubernetes]
kubeconfig = "/etc/portal/eu-central.kubeconfig"
storage_class = "fast-ssd"
ingress_class = "nginx"
base_domain = "eu.matrix.example"
image = "ghcr.io/element-hq/synapse:v1.163.2"
cluster_issuer = "letsencrypt"
snapshot_class = "csi-snapshots"
ingress_annotations = { "nginx.ingress.kubernetes.io/proxy-body-size" = "50m" }

[[region]]
id = "us-east"
name = "North America East"
city = "Ashburn"
country = "US"
driver = "kubernetes"

[region.kubernetes]
namespace_prefix = "hs-"
storage_class = "gp3"
ingress_class = "traefik"
base_domain = "us.matrix.example"
image = "ghcr.io/element-hq/synapse:v1.163.2"
cluster_issuer = "letsencrypt-us"
"#;

pub fn cluster(region: &str) -> KubernetesRegion {
    RegionCatalog::from_toml(REGIONS)
        .expect("the test regions parse")
        .get(region)
        .and_then(|r| r.kubernetes.clone())
        .expect("a Kubernetes region")
}

/// A homeserver of `plan` in `region`. The US one is reached at a URL of its own
/// (PORTAL_HOMESERVER_URL = https://matrix.{server_name}), and takes registrations by token.
pub fn deployment(plan: &str, region: &str) -> Deployment {
    let plans = PlanCatalog::sample();
    let plan = plans.get(plan).expect("a sample plan");
    let base_domain = cluster(region).base_domain;
    let server_name = format!("{}-team.{base_domain}", plan.id);
    let us = region == "us-east";
    Deployment {
        id: Uuid::from_u128(if us { 0x2 } else { 0x1 } << 64 | plan.id.len() as u128),
        customer_id: Uuid::from_u128(0xc0ffee),
        region: region.into(),
        public_url: us.then(|| format!("https://matrix.{server_name}")),
        server_name,
        port: None,
        settings: Settings {
            registration: if us {
                Registration::Token
            } else {
                Registration::Closed
            },
            federation: true,
            guest_access: false,
            max_monthly_active_users: Some(plan.limits.monthly_active_users),
        },
        size: Size {
            resources: plan.resources,
            storage_gb: plan.limits.storage_gb,
        },
    }
}

pub fn generated() -> Generated {
    Generated {
        registration_shared_secret: "golden-registration-secret".into(),
        macaroon_secret_key: "golden-macaroon-secret".into(),
        form_secret: "golden-form-secret".into(),
        signing_key: "ed25519 a_gold AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n".into(),
    }
}
