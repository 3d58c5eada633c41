//! The portal's server: configuration, wiring, HTTP routes, jobs and operator commands.

pub mod config;
pub mod http;
pub mod invoice_pdf;
pub mod jobs;
pub mod oidc;
pub mod secrets;
pub mod session_store;
pub mod state;
pub mod telemetry;

use axum::Router;
use config::Config;
use domain::{plans::PlanCatalog, Clock, Db, Portal, Random};
use http::{metrics::Metrics, page_cache::PageCache};
use leptos::config::LeptosOptions;
use state::AppState;
use std::sync::Arc;

pub struct Built {
    pub router: Router,
    pub state: AppState,
    pub runner: domain::jobs::Runner,
    /// Runs the homeservers' processes (whichever replica holds its lease).
    pub supervisor: domain::homeservers::supervisor::Supervisor,
}

/// Connects to the database named by the configuration, creating the data directory for the
/// embedded default.
pub async fn connect(config: &Config) -> Result<Db, String> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| format!("PORTAL_DATA_DIR {}: {e}", config.data_dir.display()))?;
    }
    Db::connect(&url)
        .await
        .map_err(|e| format!("database: {e}"))
}

/// Reads a configuration file named by `variable`, or uses the sample when it is not set.
fn config_file<T>(
    path: &Option<std::path::PathBuf>,
    variable: &str,
    sample: impl FnOnce() -> T,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, String> {
    let Some(path) = path else {
        return Ok(sample());
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{variable} {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{variable} {}: {e}", path.display()))
}

pub fn load_plans(config: &Config) -> Result<PlanCatalog, String> {
    config_file(
        &config.plans_file,
        "PORTAL_PLANS_FILE",
        PlanCatalog::sample,
        |text| PlanCatalog::from_toml(text).map_err(|e| e.to_string()),
    )
}

pub fn load_regions(
    config: &Config,
) -> Result<domain::homeservers::regions::RegionCatalog, String> {
    use domain::homeservers::regions::RegionCatalog;
    config_file(
        &config.regions_file,
        "PORTAL_REGIONS_FILE",
        RegionCatalog::sample,
        RegionCatalog::from_toml,
    )
}

/// The reverse proxy's map of server names to loopback addresses (see the README).
const PROXY_MAP: &str = "proxy.map";

/// Each region's provisioner: every local region shares one local driver, which keeps the
/// homeservers' data under PORTAL_DATA_DIR/homeservers; each Kubernetes region has a client
/// of its own cluster, and the server names of its `base_domain`.
async fn hosting(
    config: &Config,
    regions: &domain::homeservers::regions::RegionCatalog,
) -> Result<domain::homeservers::lifecycle::Hosting, String> {
    use domain::homeservers::{local::LocalDriver, provisioner::Provisioners, regions::Driver};
    let local = Arc::new(LocalDriver::new(
        config.synapse_python.clone(),
        config.data_dir.join("homeservers"),
    ));
    let mut provisioners = Provisioners::new();
    let mut region_domains = Vec::new();
    for region in &regions.regions {
        provisioners = match (region.driver, &region.kubernetes) {
            (Driver::Kubernetes, Some(cluster)) => {
                let driver = kubernetes_driver::KubernetesDriver::connect(cluster.clone())
                    .await
                    .map_err(|e| format!("region {}: {e}", region.id))?;
                region_domains.push((region.id.clone(), cluster.base_domain.clone()));
                provisioners.with(&region.id, Arc::new(driver))
            }
            _ => provisioners.with(&region.id, local.clone()),
        };
    }
    let mut hosting = domain::homeservers::lifecycle::Hosting::new(
        provisioners,
        &config.homeserver_domain,
        config.homeserver_ports()?,
    );
    for (region, domain) in region_domains {
        hosting = hosting.region_domain(&region, &domain);
    }
    Ok(hosting
        .retention_days(config.homeserver_retention_days)
        .backups_kept(config.homeserver_backups_kept)
        .public_urls(
            config.homeserver_url_pattern()?,
            config.data_dir.join("homeservers").join(PROXY_MAP),
        ))
}

/// The seller, checked against the VAT rates (an EU member state, a well-formed VAT number).
fn seller(config: &Config) -> Result<domain::billing::Seller, String> {
    use domain::billing::{tax::VatRates, vat_number};
    let country = config.seller_country.trim().to_ascii_uppercase();
    if !VatRates::sample().is_eu(&country) {
        return Err(format!(
            "PORTAL_SELLER_COUNTRY must be an EU member state, got {country:?}"
        ));
    }
    let vat_number = match &config.seller_vat_number {
        Some(n) => {
            let n = vat_number::normalize(&country, n);
            if !vat_number::is_valid_format(&country, &n) {
                return Err(format!(
                    "PORTAL_SELLER_VAT_NUMBER {n:?} is not a VAT number of {country}"
                ));
            }
            Some(n)
        }
        None => None,
    };
    let production = config.environment == config::Environment::Production;
    let missing: Vec<&str> = [
        ("PORTAL_SELLER_NAME", config.seller_name.is_none()),
        ("PORTAL_SELLER_ADDRESS", config.seller_address.is_none()),
        ("PORTAL_SELLER_VAT_NUMBER", vat_number.is_none()),
        (
            "PORTAL_SELLER_COMPANY_NUMBER",
            config.seller_company_number.is_none(),
        ),
        ("PORTAL_SELLER_IBAN", config.seller_iban.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    if production && !missing.is_empty() {
        return Err(format!(
            "In production invoices name the seller in full: set {}",
            missing.join(", ")
        ));
    }
    let iban = match &config.seller_iban {
        Some(text) => Some(
            text.parse::<iban::Iban>()
                .map_err(|e| format!("PORTAL_SELLER_IBAN is not a valid IBAN: {e}"))?
                .to_string(),
        ),
        None => None,
    };
    let address: Vec<String> = config
        .seller_address
        .as_deref()
        .unwrap_or("")
        .split(';')
        .map(|line| line.trim().to_string())
        .filter(|line| !line.is_empty())
        .collect();
    Ok(domain::billing::Seller {
        country,
        vat_number,
        // Development only (production refuses to start without them): a name that says so.
        legal_name: config
            .seller_name
            .clone()
            .unwrap_or_else(|| "Sample seller (set PORTAL_SELLER_NAME)".into()),
        address,
        company_number: config.seller_company_number.clone(),
        iban,
        bic: config.seller_bic.clone(),
    })
}

/// Builds everything the server runs, from configuration and the injected clock and random
/// source (tests pass a manual clock and a seeded source).
pub async fn build(
    config: Config,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
) -> Result<Built, String> {
    config.validate()?;
    let secrets = secrets::Secrets::load(&config, &*random)?;
    config.check_mail()?;
    let plans = load_plans(&config)?;
    let regions = load_regions(&config)?;
    let regions_for_hosting = regions.clone();
    let assets = state::load_assets(&config.site_root)?;
    let db = connect(&config).await?;
    db.migrate().await.map_err(|e| format!("migrations: {e}"))?;

    let portal = Portal {
        db: db.clone(),
        clock: clock.clone(),
        random: random.clone(),
        plans: Arc::new(plans),
        regions: Arc::new(regions),
        public_url: config.public_url().into(),
        passwords: domain::accounts::password::PasswordHasher::new(
            &secrets.password_pepper,
            config.bcrypt_cost,
            domain::accounts::password::default_concurrency(),
        ),
        secret_box: Arc::new(secrets.totp_keys),
        rates: Arc::new(domain::billing::tax::VatRates::sample()),
        seller: Arc::new(seller(&config)?),
        payments: match config.stripe()? {
            Some(stripe) => Some(Arc::new(domain::billing::stripe::Gateway::new(stripe)?)),
            None => None,
        },
        vies: match config.vies()? {
            Some(vies) => Some(Arc::new(domain::billing::vies::Vies::new(vies)?)),
            None => None,
        },
        dunning: domain::billing::dunning::Policy {
            suspend_after_days: config.dunning_suspend_days,
            cancel_after_days: config.dunning_cancel_days,
        },
        invoice_link_days: config.invoice_link_days,
        manual_invoice_lead_days: config.manual_invoice_lead_days,
        hosting: Arc::new(hosting(&config, &regions_for_hosting).await?),
        link_opens: Default::default(),
        link_lookups: Default::default(),
    };
    let leptos_options = LeptosOptions::builder()
        .output_name("portal")
        .site_root(config.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.site_addr)
        .build();
    let auth_limiter = domain::accounts::throttle::IpLimiter::new(config.auth_attempts_per_minute);
    let link_limiter =
        domain::accounts::throttle::IpLimiter::new(config.invoice_link_opens_per_minute);
    let providers = oidc::Providers::new(config.providers()?);
    let metrics_token = config.metrics_token()?;
    let state = AppState::new(state::Shared {
        portal: portal.clone(),
        public_url: config.public_url(),
        https: config.is_https(),
        config,
        leptos_options,
        assets,
        metrics: Metrics::default(),
        page_cache: PageCache::default(),
        link_pages: Default::default(),
        recently_touched: Default::default(),
        auth_limiter,
        link_limiter,
        providers,
        secrets_session_key: secrets.session_key,
        metrics_token,
    });
    let mailer = match &state.config.smtp_url {
        Some(url) => domain::mail::Mailer::smtp(url, &state.config.mail_from())?,
        None => domain::mail::Mailer::files(
            state.config.data_dir.join("outbox"),
            &state.config.mail_from(),
        )?,
    };
    let runner = jobs::runner(&portal, mailer, state.config.session_absolute_hours);
    Ok(Built {
        router: http::router(state.clone()),
        supervisor: domain::homeservers::supervisor::Supervisor::new(portal.clone()),
        state,
        runner,
    })
}
