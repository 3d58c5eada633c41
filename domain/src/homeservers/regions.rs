//! Regions from configuration (`config/regions.toml`, or PORTAL_REGIONS_FILE): id, name, city
//! and country. A homeserver's region is fixed for its life, and its data stays there (P11).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub id: String,
    pub name: String,
    pub city: String,
    /// ISO 3166 alpha-2.
    pub country: String,
    /// False: kept for the homeservers already there, not offered for new orders.
    #[serde(default = "yes")]
    pub available: bool,
    /// What runs the region's homeservers.
    #[serde(default)]
    pub driver: Driver,
    /// The cluster of a region whose driver is "kubernetes" (`[region.kubernetes]`).
    #[serde(default)]
    pub kubernetes: Option<KubernetesRegion>,
}

/// A region's provisioner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// Synapse processes on the portal's own machine: every local region is this machine.
    #[default]
    Local,
    /// A Kubernetes cluster: a namespace per homeserver (`[region.kubernetes]` says which
    /// cluster and how).
    Kubernetes,
}

/// How a region's Kubernetes cluster runs homeservers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesRegion {
    /// A kubeconfig file; absent: the portal runs in the cluster (its service account).
    #[serde(default)]
    pub kubeconfig: Option<String>,
    /// The kubeconfig's context (absent: its current context).
    #[serde(default)]
    pub context: Option<String>,
    /// Each homeserver's namespace is this prefix and the homeserver's id.
    #[serde(default = "namespace_prefix")]
    pub namespace_prefix: String,
    /// The storage class of the homeservers' volumes.
    pub storage_class: String,
    /// The ingress class of the homeservers' Ingresses.
    pub ingress_class: String,
    /// Server names in this region are `<name>.<base_domain>`; each is the host of its Ingress.
    pub base_domain: String,
    /// Synapse's container image with its tag (changing it upgrades every homeserver).
    pub image: String,
    /// The cert-manager ClusterIssuer that signs the Ingresses' certificates.
    pub cluster_issuer: String,
    /// Annotations for the ingress controller on every Ingress (for ingress-nginx, raise
    /// `nginx.ingress.kubernetes.io/proxy-body-size` to Synapse's 50M upload limit).
    #[serde(default)]
    pub ingress_annotations: std::collections::BTreeMap<String, String>,
    /// The VolumeSnapshotClass of backups (absent: backups are refused, with this reason).
    #[serde(default)]
    pub snapshot_class: Option<String>,
    /// Where the portal reaches a homeserver's admin API, with `{namespace}` in it.
    #[serde(default = "admin_url")]
    pub admin_url: String,
}

fn namespace_prefix() -> String {
    "matrix-".into()
}

fn admin_url() -> String {
    "http://synapse.{namespace}.svc:8008".into()
}

/// A DNS name of lower-case labels (a-z, 0-9, inner -), as Kubernetes and Matrix accept.
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

impl KubernetesRegion {
    fn validate(&self, region: &str) -> Result<(), String> {
        let prefix_ok = !self.namespace_prefix.is_empty()
            && self.namespace_prefix.len() <= 26
            && self.namespace_prefix.as_bytes()[0].is_ascii_lowercase()
            && self
                .namespace_prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !prefix_ok {
            return Err(format!(
                "region {region}: namespace_prefix {:?}: use 1 to 26 lower-case letters, digits and -, starting with a letter",
                self.namespace_prefix
            ));
        }
        for (key, value) in [
            ("storage_class", &self.storage_class),
            ("ingress_class", &self.ingress_class),
            ("cluster_issuer", &self.cluster_issuer),
        ] {
            if !is_dns_name(value) {
                return Err(format!(
                    "region {region}: {key} {value:?} is not a Kubernetes object name"
                ));
            }
        }
        if let Some(class) = &self.snapshot_class {
            if !is_dns_name(class) {
                return Err(format!(
                    "region {region}: snapshot_class {class:?} is not a Kubernetes object name"
                ));
            }
        }
        if !is_dns_name(&self.base_domain) {
            return Err(format!(
                "region {region}: base_domain {:?} must be a lower-case DNS name",
                self.base_domain
            ));
        }
        // A tag (or digest) on the image's last path part: "registry:5000/synapse" has none.
        let tagged = self
            .image
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':') || last.contains('@'));
        if !tagged || self.image.contains(char::is_whitespace) {
            return Err(format!(
                "region {region}: image {:?} must name a container image with its tag (repository:tag)",
                self.image
            ));
        }
        let admin_ok = (self.admin_url.starts_with("http://")
            || self.admin_url.starts_with("https://"))
            && self.admin_url.contains("{namespace}");
        if !admin_ok {
            return Err(format!(
                "region {region}: admin_url {:?} must be an http(s) URL with {{namespace}} in it",
                self.admin_url
            ));
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}

impl Region {
    /// "Central Europe (Frankfurt, Germany)".
    pub fn label(&self) -> String {
        let country = celes::Country::from_alpha2(&self.country)
            .map(|c| c.long_name)
            .unwrap_or(self.country.as_str());
        format!("{} ({}, {})", self.name, self.city, country)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionCatalog {
    #[serde(rename = "region")]
    pub regions: Vec<Region>,
}

pub const SAMPLE: &str = include_str!("../../../config/regions.toml");

impl RegionCatalog {
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let catalog: RegionCatalog = toml::from_str(text).map_err(|e| e.to_string())?;
        if catalog.regions.is_empty() {
            return Err("no region is configured".into());
        }
        for (i, region) in catalog.regions.iter().enumerate() {
            let id_ok = !region.id.is_empty()
                && region.id.len() <= 32
                && region
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !id_ok {
                return Err(format!(
                    "region id {:?}: use 1 to 32 lower-case letters, digits and -",
                    region.id
                ));
            }
            if catalog.regions[..i].iter().any(|r| r.id == region.id) {
                return Err(format!("region id {:?} appears twice", region.id));
            }
            if celes::Country::from_alpha2(&region.country).is_err() {
                return Err(format!(
                    "region {}: {:?} is not an ISO 3166 alpha-2 country code",
                    region.id, region.country
                ));
            }
            if region.name.trim().is_empty() || region.city.trim().is_empty() {
                return Err(format!("region {}: name and city are required", region.id));
            }
            match (region.driver, &region.kubernetes) {
                (Driver::Local, None) => {}
                (Driver::Local, Some(_)) => {
                    return Err(format!(
                        "region {}: [region.kubernetes] is set but the driver is \"local\"",
                        region.id
                    ))
                }
                (Driver::Kubernetes, None) => {
                    return Err(format!(
                        "region {}: the kubernetes driver needs a [region.kubernetes] table",
                        region.id
                    ))
                }
                (Driver::Kubernetes, Some(cluster)) => cluster.validate(&region.id)?,
            }
        }
        Ok(catalog)
    }

    pub fn sample() -> Self {
        Self::from_toml(SAMPLE).expect("the shipped regions parse")
    }

    pub fn get(&self, id: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.id == id)
    }

    /// Whether every region runs on the portal's own machine (the local driver).
    pub fn all_local(&self) -> bool {
        self.regions.iter().all(|r| r.driver == Driver::Local)
    }

    /// Whether `region` runs on the portal's own machine while other regions do not (such a
    /// region says so where it is offered; when all are local, one note says it for all).
    pub fn local_among_others(&self, region: &Region) -> bool {
        region.driver == Driver::Local && !self.all_local()
    }

    /// The domain of the server names of region `id`'s homeservers, where the region sets one.
    pub fn base_domain(&self, id: &str) -> Option<&str> {
        self.get(id)
            .and_then(|r| r.kubernetes.as_ref())
            .map(|k| k.base_domain.as_str())
    }

    /// The regions new orders may choose.
    pub fn available(&self) -> impl Iterator<Item = &Region> {
        self.regions.iter().filter(|r| r.available)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_regions_load_and_show_their_location() {
        let catalog = RegionCatalog::sample();
        assert_eq!(catalog.available().count(), 3);
        assert_eq!(
            catalog.get("eu-north").unwrap().label(),
            "Northern Europe (Helsinki, Finland)"
        );
    }

    #[test]
    fn bad_catalogues_are_refused_with_the_reason() {
        let region = |id: &str, country: &str| {
            format!(
                "[[region]]\nid = \"{id}\"\nname = \"N\"\ncity = \"C\"\ncountry = \"{country}\"\n"
            )
        };
        assert!(RegionCatalog::from_toml("").unwrap_err().contains("region"));
        assert!(RegionCatalog::from_toml(&region("EU", "DE"))
            .unwrap_err()
            .contains("lower-case"));
        assert!(RegionCatalog::from_toml(&region("eu", "XX"))
            .unwrap_err()
            .contains("ISO 3166"));
        let twice = format!("{}{}", region("eu", "DE"), region("eu", "FI"));
        assert!(RegionCatalog::from_toml(&twice)
            .unwrap_err()
            .contains("twice"));
        assert!(
            RegionCatalog::from_toml(&format!("{}driver = \"moon\"\n", region("eu", "DE")))
                .unwrap_err()
                .contains("unknown variant"),
            "an unknown driver is refused"
        );
        assert!(RegionCatalog::sample().all_local());
        let kubernetes = |table: &str| {
            RegionCatalog::from_toml(&format!(
                "{}driver = \"kubernetes\"\n{table}",
                region("eu", "DE")
            ))
        };
        assert!(kubernetes("").unwrap_err().contains("[region.kubernetes]"));
        let cluster = "[region.kubernetes]\nstorage_class = \"fast\"\ningress_class = \"nginx\"\n\
                       base_domain = \"eu.matrix.example\"\ncluster_issuer = \"letsencrypt\"\n";
        let catalog = kubernetes(&format!(
            "{cluster}image = \"ghcr.io/element-hq/synapse:v1.163.2\"\n"
        ))
        .unwrap();
        assert!(!catalog.all_local());
        assert_eq!(catalog.base_domain("eu"), Some("eu.matrix.example"));
        let settings = catalog.get("eu").unwrap().kubernetes.as_ref().unwrap();
        assert_eq!(settings.namespace_prefix, "matrix-");
        assert_eq!(settings.admin_url, "http://synapse.{namespace}.svc:8008");
        for untagged in ["synapse", "registry:5000/synapse"] {
            assert!(kubernetes(&format!("{cluster}image = \"{untagged}\"\n"))
                .unwrap_err()
                .contains("tag"));
        }
        assert!(kubernetes(&format!(
            "{cluster}image = \"synapse:1\"\nnamespace_prefix = \"Matrix\"\n"
        ))
        .unwrap_err()
        .contains("namespace_prefix"));
        let local_with_cluster = format!(
            "{}[region.kubernetes]\nstorage_class = \"a\"\ningress_class = \"b\"\nbase_domain = \"c\"\n\
             cluster_issuer = \"d\"\nimage = \"e:1\"\n",
            region("eu", "DE")
        );
        assert!(RegionCatalog::from_toml(&local_with_cluster)
            .unwrap_err()
            .contains("driver is \"local\""));
        let closed = format!("{}available = false\n", region("old", "DE"));
        let catalog = RegionCatalog::from_toml(&closed).unwrap();
        assert_eq!(catalog.available().count(), 0);
        assert!(
            catalog.get("old").is_some(),
            "still known for existing homeservers"
        );
    }
}
