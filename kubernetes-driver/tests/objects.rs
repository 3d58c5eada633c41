//! The objects the Kubernetes driver applies, for two plans in two regions: compared with the
//! golden files under tests/golden (PORTAL_UPDATE_GOLDEN=1 rewrites them after a deliberate
//! change), and validated against Kubernetes' own schemas by kubernetes-validate
//! (scripts/setup.sh installs it in the test virtualenv, PORTAL_TEST_PYTHON).

mod common;

use common::{cluster, deployment, generated};
use domain::homeservers::{
    provisioner::Deployment,
    settings::{Registration, Settings},
};
use kubernetes_driver::objects;
use std::path::PathBuf;

/// Multi-document YAML (each document JSON, which YAML reads as it is).
fn render(plan: &str, region: &str) -> String {
    objects::all(&cluster(region), &deployment(plan, region), &generated())
        .iter()
        .map(|object| serde_json::to_string_pretty(object).expect("JSON") + "\n")
        .collect::<Vec<_>>()
        .join("---\n")
}

const CASES: [(&str, &str); 4] = [
    ("starter", "eu-central"),
    ("starter", "us-east"),
    ("business", "eu-central"),
    ("business", "us-east"),
];

fn golden(plan: &str, region: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{plan}-{region}.yaml"))
}

#[test]
fn the_objects_match_the_golden_files() {
    let update = std::env::var_os("PORTAL_UPDATE_GOLDEN").is_some();
    for (plan, region) in CASES {
        let rendered = render(plan, region);
        let path = golden(plan, region);
        if update {
            std::fs::write(&path, &rendered).expect("the golden file is written");
        }
        let expected = std::fs::read_to_string(&path).expect("the golden file exists");
        if let Some((line, (got, want))) = rendered
            .lines()
            .zip(expected.lines())
            .enumerate()
            .find(|(_, (got, want))| got != want)
        {
            panic!(
                "{} differs at line {}:\n  now:    {got}\n  golden: {want}\n\
                 after a deliberate change, rerun with PORTAL_UPDATE_GOLDEN=1 and review the diff",
                path.display(),
                line + 1
            );
        }
        assert_eq!(
            rendered.lines().count(),
            expected.lines().count(),
            "{} has another length",
            path.display()
        );
    }
}

#[test]
fn the_objects_carry_the_plan_the_region_and_the_owner() {
    let starter = render("starter", "eu-central");
    let business = render("business", "us-east");
    // The plan's resources and storage.
    assert!(starter.contains("\"memory\": \"1024Mi\""));
    assert!(starter.contains("\"cpu\": \"500m\""));
    assert!(starter.contains("\"storage\": \"10Gi\""));
    assert!(business.contains("\"memory\": \"2048Mi\""));
    assert!(business.contains("\"storage\": \"100Gi\""));
    assert!(business.contains("max_mau_value: 250"));
    // The region's cluster settings.
    assert!(starter.contains("\"storageClassName\": \"fast-ssd\""));
    assert!(starter.contains("\"ingressClassName\": \"nginx\""));
    assert!(starter.contains("\"cert-manager.io/cluster-issuer\": \"letsencrypt\""));
    assert!(starter.contains("\"name\": \"matrix-00000000-0000-0001-0000-000000000007\""));
    assert!(business.contains("\"storageClassName\": \"gp3\""));
    assert!(business.contains("\"name\": \"hs-00000000-0000-0002-0000-000000000008\""));
    // Labels that say whose it is.
    assert!(
        starter.contains("\"matrix-portal/customer\": \"00000000-0000-0000-0000-000000c0ffee\"")
    );
    assert!(starter.contains("\"matrix-portal/region\": \"eu-central\""));
    // The public URL and both host names on the US Ingress; the server name alone in Europe.
    assert!(business
        .contains("public_baseurl: \\\"https://matrix.business-team.us.matrix.example/\\\""));
    assert!(business.contains("\"host\": \"matrix.business-team.us.matrix.example\""));
    assert!(business.contains("\"host\": \"business-team.us.matrix.example\""));
    assert!(starter.contains("public_baseurl: \\\"https://starter-team.eu.matrix.example/\\\""));
    assert!(starter.contains("serve_server_wellknown: true"));
    assert_eq!(starter.matches("\"host\": ").count(), 1);
    // The region's own annotations for its ingress controller, beside cert-manager's.
    assert!(starter.contains("\"nginx.ingress.kubernetes.io/proxy-body-size\": \"50m\""));
    assert!(!business.contains("proxy-body-size"));
    // Synapse's admin API is not exposed.
    assert!(!starter.contains("/_synapse/admin"));
}

#[test]
fn the_hashes_follow_what_changed() {
    let region = cluster("eu-central");
    let before = deployment("starter", "eu-central");
    // A setting changes Synapse's configuration, and so the StatefulSet.
    let open = Deployment {
        settings: Settings {
            registration: Registration::Open,
            ..before.settings.clone()
        },
        ..before.clone()
    };
    assert_ne!(objects::config_hash(&before), objects::config_hash(&open));
    assert_ne!(
        objects::spec_hash(&region, &before),
        objects::spec_hash(&region, &open)
    );
    // A bigger plan changes the StatefulSet (resources, storage), not the configuration.
    let bigger = Deployment {
        size: deployment("business", "eu-central").size,
        settings: before.settings.clone(),
        ..before.clone()
    };
    assert_eq!(objects::config_hash(&before), objects::config_hash(&bigger));
    assert_ne!(
        objects::spec_hash(&region, &before),
        objects::spec_hash(&region, &bigger)
    );
    // A new image tag changes the StatefulSet.
    let mut upgraded = region.clone();
    upgraded.image = "ghcr.io/element-hq/synapse:v1.164.0".into();
    assert_ne!(
        objects::spec_hash(&region, &before),
        objects::spec_hash(&upgraded, &before)
    );
}

fn kubernetes_validate(files: &[PathBuf]) -> std::process::Output {
    let python = std::env::var("PORTAL_TEST_PYTHON")
        .expect("PORTAL_TEST_PYTHON names the test virtualenv's Python (scripts/test.sh sets it)");
    std::process::Command::new(python)
        .args(["-m", "kubernetes_validate", "--strict", "--no-warn"])
        .args(["-k", "1.33.0", "-k", "1.37.0"])
        .args(files)
        .output()
        .expect("kubernetes-validate runs (scripts/setup.sh --test installs it)")
}

#[test]
fn the_golden_objects_are_valid_kubernetes_objects() {
    let files: Vec<PathBuf> = CASES.iter().map(|(p, r)| golden(p, r)).collect();
    let output = kubernetes_validate(&files);
    let said = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kubernetes-validate: {said}");
    // Each object of each file was validated, against both versions.
    assert_eq!(said.matches("INFO").count(), CASES.len() * 7 * 2, "{said}");
    // The validator does refuse what Kubernetes would: a field the schema does not have.
    let broken = std::env::temp_dir().join(format!("broken-{}.yaml", std::process::id()));
    let object = render("starter", "eu-central").replacen("\"replicas\"", "\"replica\"", 1);
    std::fs::write(&broken, object).unwrap();
    let output = kubernetes_validate(std::slice::from_ref(&broken));
    let _ = std::fs::remove_file(&broken);
    assert!(!output.status.success(), "an unknown field is refused");
}
