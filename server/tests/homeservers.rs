//! Homeservers that really run: a paid order becomes a Synapse process that Matrix clients
//! reach, whose first admin signs in with the password the portal shows once, and which the
//! supervisor restarts when it dies. Real Synapse (PORTAL_SYNAPSE_PYTHON), both databases.

mod common;

use common::{
    browser::{api, api_with, Browser},
    stripe::order,
    TestApp,
};
use domain::db::Backend;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

const SELLER: [&str; 6] = [
    "--seller-name",
    "Example Hosting Oy",
    "--seller-address",
    "Mannerheimintie 1; 00100 Helsinki; Finland",
    "--seller-iban",
    "FI2112345600000785",
];

/// The homeserver part of the homeserver page's loader.
async fn host(browser: &mut Browser<'_>, sub: &str) -> serde_json::Value {
    api_with(browser, "manage", &[("id", sub)]).await["host"].clone()
}

async fn events(app: &TestApp, homeserver: uuid::Uuid) -> Vec<String> {
    domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT kind FROM homeserver_events WHERE homeserver_id = $1 ORDER BY at, id"
    )
    .bind(homeserver)
    .fetch_all(pool)
    .await
    .unwrap())
}

/// Waits (60 s at most) until `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 60 s");
}

/// The whole life: paid → running (the admin signs in with the password shown once) →
/// killed and restarted → suspended by dunning → started by payment → ended, kept, deleted.
async fn a_paid_homeserver_runs_and_its_first_admin_signs_in(backend: Backend) {
    let app = common::spawn_app_with_homeservers(backend, &SELLER).await;
    let mut bea = Browser::new(&app);
    bea.sign_up_verified("bea@example.com", PASSWORD, "Bea")
        .await;
    bea.billing_details("FI").await;
    order(&mut bea, "starter", "bea-home", "eur").await;
    let sub = api(&mut bea, "dashboard").await["rows"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (homeserver, invoice): (uuid::Uuid, uuid::Uuid) = domain::on_db!(&app.state.portal.db, pool => sqlx::query_as(
        "SELECT s.homeserver_id, i.id FROM subscriptions s JOIN invoices i ON i.subscription_id = s.id WHERE s.id = $1"
    )
    .bind(uuid::Uuid::parse_str(&sub).unwrap())
    .fetch_one(pool)
    .await
    .unwrap());

    // Not paid: nothing is made.
    let waiting = host(&mut bea, &sub).await;
    assert_eq!(waiting["state_key"], "homeserver.state_waiting_for_payment");
    assert_eq!(waiting["server_name"], "bea-home.localhost");
    assert_eq!(waiting["url"], serde_json::Value::Null);
    app.run_jobs().await;
    let data = app
        .data_dir
        .join("homeservers")
        .join(homeserver.to_string());
    assert!(!data.exists());

    // Paid: provisioning makes it, the supervisor starts it, and the job finishes once it
    // answers and both admins are registered.
    domain::billing::manual::mark_paid(
        &app.state.portal,
        &domain::audit::RequestMeta::default(),
        domain::audit::Actor::System,
        invoice,
    )
    .await
    .unwrap();
    let provisioning = host(&mut bea, &sub).await;
    assert_eq!(
        provisioning["state_key"],
        "homeserver.state_waiting_for_provisioning"
    );
    app.run_jobs().await;
    let running = host(&mut bea, &sub).await;
    assert_eq!(
        running["state_key"], "homeserver.state_running",
        "{running}"
    );
    assert_eq!(running["admin_user"], "admin");
    assert_eq!(running["password_to_reveal"], true);
    let url = running["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(data.join("homeserver.yaml").exists() && data.join("portal.yaml").exists());
    // (All at one instant of the portal's clock, so compared without their order.)
    let mut happened = events(&app, homeserver).await;
    happened.sort();
    assert_eq!(happened, ["provisioning", "running", "started"]);

    // The URL the page shows is a Matrix homeserver.
    let versions: serde_json::Value = serde_json::from_str(
        &reqwest::get(format!("{url}/_matrix/client/versions"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(versions["versions"]
        .as_array()
        .is_some_and(|v| !v.is_empty()));

    // The page, without JavaScript, shows the same, and offers the password once.
    let page = bea
        .get(&format!("/homeservers/{sub}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&url) && page.contains("@admin:bea-home.localhost"),
        "{page}"
    );
    assert!(page.contains("Show the password once"));

    // Another customer gets nothing of it.
    let mut cleo = Browser::new(&app);
    cleo.sign_up_verified("cleo@example.com", PASSWORD, "Cleo")
        .await;
    let reveal = format!("/homeservers/{sub}/reveal-password");
    assert_eq!(cleo.post(&reveal, &[]).await.status(), 404);
    let theirs = cleo
        .get(&format!("/homeservers/{sub}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!theirs.contains("bea-home.localhost") && !theirs.contains(&url));

    // "Show the password once": shown, then erased; the admin signs in with it.
    let shown = bea.post(&reveal, &[]).await.text().await.unwrap();
    let start = shown
        .find("class=\"admin-password\"")
        .expect("the password");
    let value = &shown[start..];
    let value = &value[value.find("value=\"").unwrap() + 7..];
    let password = value[..value.find('"').unwrap()].to_string();
    assert!(password.len() >= 20, "{password}");
    assert!(shown.contains("@admin:bea-home.localhost"));
    let session = domain::homeservers::synapse::login(
        &domain::homeservers::synapse::client(),
        &url,
        "admin",
        &password,
    )
    .await
    .expect("the first admin signs in with the password shown");
    assert_eq!(session.user_id, "@admin:bea-home.localhost");
    let again = bea.post(&reveal, &[]).await.text().await.unwrap();
    assert!(again.contains("The password was shown already") && !again.contains(&password));
    assert_eq!(host(&mut bea, &sub).await["password_to_reveal"], false);
    assert_eq!(
        common::browser::database_mentions(&app.state.portal.db, &password).await,
        Vec::<String>::new(),
        "the password is not kept, not even sealed"
    );

    // The portal's own admin user reaches the admin API with the token it keeps sealed.
    let sealed: String = domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT service_token FROM homeservers WHERE id = $1"
    )
    .bind(homeserver)
    .fetch_one(pool)
    .await
    .unwrap());
    let token = String::from_utf8(app.state.portal.secret_box.open(&sealed).unwrap().0).unwrap();
    let version = domain::homeservers::synapse::server_version(
        &domain::homeservers::synapse::client(),
        &url,
        &token,
    )
    .await
    .unwrap();
    assert!(version.starts_with("1."), "{version}");

    // Checked every minute: it answers, and the page shows Synapse's version.
    app.clock.advance(time::Duration::minutes(1));
    app.run_jobs().await;
    let checked = host(&mut bea, &sub).await;
    assert_eq!(checked["uptime"], "100.0 %", "{checked}");
    assert_eq!(checked["down_since"], serde_json::Value::Null);
    assert!(
        checked["version"].as_str().unwrap().starts_with("1."),
        "{checked}"
    );

    // Killed, it is restarted by the supervisor, and both are recorded. The checks in
    // between find it down (two of them, ten minutes apart on the portal's clock: its owner is
    // told once).
    let pid: i32 = std::fs::read_to_string(data.join("process.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let http = domain::homeservers::synapse::client();
    eventually("the kill", || async {
        !domain::homeservers::synapse::healthy(&http, &url).await
    })
    .await;
    app.clock.advance(time::Duration::minutes(1));
    app.run_jobs().await;
    assert!(host(&mut bea, &sub).await["down_since"].is_string());
    app.clock.advance(time::Duration::minutes(10));
    app.run_jobs().await;
    assert!(app
        .mail_subjects("bea@example.com")
        .await
        .contains(&"bea-home.localhost is not answering".to_string()));
    eventually("the restart", || async {
        events(&app, homeserver)
            .await
            .ends_with(&["exited".to_string(), "restarted".to_string()])
    })
    .await;
    eventually("the restarted homeserver's health", || {
        domain::homeservers::synapse::healthy(&http, &url)
    })
    .await;
    app.clock.advance(time::Duration::minutes(1));
    app.run_jobs().await;
    let back = host(&mut bea, &sub).await;
    assert_eq!(back["down_since"], serde_json::Value::Null);
    assert_eq!(back["uptime"], "50.0 %", "two of four checks answered");
    let alerts = app
        .mail_subjects("bea@example.com")
        .await
        .iter()
        .filter(|s| s.ends_with("is not answering"))
        .count();
    assert_eq!(alerts, 1, "one email per outage");
    let after: i32 = std::fs::read_to_string(data.join("process.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(after, pid, "a new process");

    // Unpaid: its paid period ends, dunning marks it for suspension, and it stops.
    let sub_id = uuid::Uuid::parse_str(&sub).unwrap();
    let period_end = |app: &TestApp| {
        let db = app.state.portal.db.clone();
        async move {
            let end: i64 = domain::on_db!(&db, pool => sqlx::query_scalar(
                "SELECT current_period_end FROM subscriptions WHERE id = $1"
            )
            .bind(sub_id)
            .fetch_one(pool)
            .await
            .unwrap());
            domain::clock::from_millis(end)
        }
    };
    app.clock
        .set(period_end(&app).await + time::Duration::hours(1));
    app.run_jobs().await;
    app.clock
        .advance(time::Duration::days(14) + time::Duration::hours(1));
    app.run_jobs().await;
    // Weeks went by on the portal's clock: Bea signs in again.
    let mut bea = Browser::new(&app);
    bea.sign_in("bea@example.com", PASSWORD).await;
    assert_eq!(
        host(&mut bea, &sub).await["state_key"],
        "homeserver.state_suspended"
    );
    eventually("the stop", || async {
        !domain::homeservers::synapse::healthy(&http, &url).await
    })
    .await;

    // Paid: it starts again, at the same address.
    let renewal: uuid::Uuid = domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT id FROM invoices WHERE subscription_id = $1 AND status = 'open'"
    )
    .bind(sub_id)
    .fetch_one(pool)
    .await
    .unwrap());
    domain::billing::manual::mark_paid(
        &app.state.portal,
        &domain::audit::RequestMeta::default(),
        domain::audit::Actor::System,
        renewal,
    )
    .await
    .unwrap();
    app.run_jobs().await;
    let resumed = host(&mut bea, &sub).await;
    assert_eq!(resumed["state_key"], "homeserver.state_running");
    assert_eq!(resumed["url"], url.as_str());
    eventually("the start after payment", || {
        domain::homeservers::synapse::healthy(&http, &url)
    })
    .await;

    // Never paid again: dunning ends the subscription, the homeserver stops and keeps its
    // data for the retention period, then its data is deleted; its name stays reserved.
    app.clock
        .set(period_end(&app).await + time::Duration::hours(1));
    app.run_jobs().await;
    app.clock
        .advance(time::Duration::days(30) + time::Duration::hours(1));
    app.run_jobs().await;
    let mut bea = Browser::new(&app);
    bea.sign_in("bea@example.com", PASSWORD).await;
    assert_eq!(
        host(&mut bea, &sub).await["state_key"],
        "homeserver.state_terminating"
    );
    eventually("the stop at the end", || async {
        !domain::homeservers::synapse::healthy(&http, &url).await
    })
    .await;
    assert!(data.exists(), "kept during the retention period");
    app.clock.advance(time::Duration::days(29));
    app.run_jobs().await;
    assert!(data.exists(), "29 days later, still kept");
    app.clock
        .advance(time::Duration::days(1) + time::Duration::hours(1));
    app.run_jobs().await;
    let mut bea = Browser::new(&app);
    bea.sign_in("bea@example.com", PASSWORD).await;
    assert_eq!(
        host(&mut bea, &sub).await["state_key"],
        "homeserver.state_terminated"
    );
    assert!(!data.exists(), "deleted after the retention period");
    let reserved: i64 = domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM server_names WHERE name = 'bea-home'"
    )
    .fetch_one(pool)
    .await
    .unwrap());
    assert_eq!(reserved, 1, "the name stays reserved");
    let kinds = events(&app, homeserver).await;
    for kind in ["suspended", "running", "terminating", "terminated"] {
        assert!(kinds.contains(&kind.to_string()), "{kind} in {kinds:?}");
    }

    app.cleanup().await;
}

both_backends!(a_paid_homeserver_runs_and_its_first_admin_signs_in);
