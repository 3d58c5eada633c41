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
}

/// A region's provisioner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// Synapse processes on the portal's own machine: every local region is this machine.
    #[default]
    Local,
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
        let closed = format!("{}available = false\n", region("old", "DE"));
        let catalog = RegionCatalog::from_toml(&closed).unwrap();
        assert_eq!(catalog.available().count(), 0);
        assert!(
            catalog.get("old").is_some(),
            "still known for existing homeservers"
        );
    }
}
