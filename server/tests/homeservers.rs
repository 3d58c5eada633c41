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
        // (Recorded at one instant of the portal's clock, beside other events: not ordered.)
        let kinds = events(&app, homeserver).await;
        kinds.contains(&"exited".to_string()) && kinds.contains(&"restarted".to_string())
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

/// Registers `user` through the client API as a Matrix client does: the first request opens
/// the flow, then the registration token's stage (when given) and the dummy stage. The last
/// answer's status and body.
async fn register(url: &str, user: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let http = reqwest::Client::new();
    let endpoint = format!("{url}/_matrix/client/v3/register");
    let send = |auth: Option<serde_json::Value>| {
        let mut body =
            serde_json::json!({ "username": user, "password": PASSWORD, "inhibit_login": true });
        if let Some(auth) = auth {
            body["auth"] = auth;
        }
        post_json(&http, &endpoint, body)
    };
    let (status, body) = send(None).await;
    if status != 401 {
        return (status, body);
    }
    let session = body["session"].clone();
    if let Some(token) = token {
        let (status, body) = send(Some(serde_json::json!({
            "type": "m.login.registration_token", "token": token, "session": session
        })))
        .await;
        if status != 401 || body.get("errcode").is_some() {
            return (status, body);
        }
    }
    send(Some(
        serde_json::json!({ "type": "m.login.dummy", "session": session }),
    ))
    .await
}

/// Posts JSON; the answer's status and JSON body (reqwest's `json` feature is not built).
async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// The status of a guest registration.
async fn register_guest(url: &str) -> u16 {
    let endpoint = format!("{url}/_matrix/client/v3/register?kind=guest");
    post_json(&reqwest::Client::new(), &endpoint, serde_json::json!({}))
        .await
        .0
}

async fn federation_answers(url: &str) -> bool {
    reqwest::get(format!("{url}/_matrix/federation/v1/version"))
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// A customer who ordered and paid (by bank transfer, marked paid): their browser,
/// subscription id and homeserver id. Nothing is provisioned until the jobs run.
async fn ordered_and_paid<'a>(
    app: &'a TestApp,
    email: &str,
    name: &str,
) -> (Browser<'a>, String, uuid::Uuid) {
    let mut browser = Browser::new(app);
    browser.sign_up_verified(email, PASSWORD, "Dana").await;
    browser.billing_details("FI").await;
    order(&mut browser, "starter", name, "eur").await;
    let sub = api(&mut browser, "dashboard").await["rows"][0]["id"]
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
    domain::billing::manual::mark_paid(
        &app.state.portal,
        &domain::audit::RequestMeta::default(),
        domain::audit::Actor::System,
        invoice,
    )
    .await
    .unwrap();
    (browser, sub, homeserver)
}

/// [`ordered_and_paid`], once the homeserver runs; with its URL.
async fn running_homeserver<'a>(
    app: &'a TestApp,
    email: &str,
    name: &str,
) -> (Browser<'a>, String, uuid::Uuid, String) {
    let (mut browser, sub, homeserver) = ordered_and_paid(app, email, name).await;
    app.run_jobs().await;
    let running = host(&mut browser, &sub).await;
    assert_eq!(
        running["state_key"], "homeserver.state_running",
        "{running}"
    );
    let url = running["url"].as_str().unwrap().to_string();
    (browser, sub, homeserver, url)
}

/// Waits until the saved settings are in effect: the supervisor restarted the homeserver with
/// them, and it answers again.
async fn applied(browser: &mut Browser<'_>, sub: &str, url: &str) {
    let http = domain::homeservers::synapse::client();
    for _ in 0..600 {
        let view = api_with(browser, "host_settings", &[("id", sub)]).await;
        if view["applying"] == false && domain::homeservers::synapse::healthy(&http, url).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the settings were not applied within 60 s");
}

/// The value of `<input class="{class}" … value="…">` on a page.
fn input_value(page: &str, class: &str) -> String {
    let start = page
        .find(&format!("class=\"{class}\""))
        .unwrap_or_else(|| panic!("no {class} in {page}"));
    let value = &page[start..];
    let value = &value[value.find("value=\"").unwrap() + 7..];
    value[..value.find('"').unwrap()].to_string()
}

/// Settings, registration tokens, users and backups, each checked on the running Synapse.
async fn settings_tokens_users_and_backups_act_on_the_running_homeserver(backend: Backend) {
    let mut args = SELLER.to_vec();
    args.extend(["--homeserver-backups-kept", "2"]);
    let app = common::spawn_app_with_homeservers(backend, &args).await;
    let (mut dana, sub, homeserver, url) =
        running_homeserver(&app, "dana@example.com", "dana-home").await;
    let data = app
        .data_dir
        .join("homeservers")
        .join(homeserver.to_string());
    let settings_path = format!("/homeservers/{sub}/settings");

    // As provisioned: closed, federating, no guests, the plan's limit in the running config.
    let view = api_with(&mut dana, "host_settings", &[("id", &sub)]).await;
    assert_eq!(view["registration"], "closed");
    assert_eq!(view["federation"], true);
    assert_eq!(view["guest_access"], false);
    assert_eq!(view["max_monthly_active_users"], 25);
    assert_eq!(view["tokens"], serde_json::json!([]));
    let config = std::fs::read_to_string(data.join("portal.yaml")).unwrap();
    assert!(
        config.contains("limit_usage_by_mau: true\nmax_mau_value: 25\n"),
        "{config}"
    );
    assert!(federation_answers(&url).await);
    assert_eq!(register_guest(&url).await, 403);
    assert_eq!(register(&url, "eve", None).await.0, 403, "closed");

    // A choice that is not offered is refused, and nothing changes.
    dana.post(&settings_path, &[("registration", "everyone")])
        .await;
    assert!(dana
        .flash()
        .await
        .to_string()
        .contains("Choose who can register"));

    // Registration by token, guests allowed, federation off.
    let saved = dana
        .post(
            &settings_path,
            &[("registration", "token"), ("guest_access", "on")],
        )
        .await;
    assert_eq!(saved.status(), 303);
    applied(&mut dana, &sub, &url).await;
    assert!(events(&app, homeserver)
        .await
        .contains(&"reconfigured".to_string()));
    assert_eq!(register_guest(&url).await, 200, "guests may register");
    assert!(!federation_answers(&url).await, "no federation listener");
    let config = std::fs::read_to_string(data.join("portal.yaml")).unwrap();
    assert!(
        config.contains("federation_domain_whitelist: []"),
        "{config}"
    );
    let (status, body) = register(&url, "eve", None).await;
    assert_eq!(status, 401, "no token, no account: {body}");

    // A token for one registration: it works once.
    let tokens_path = format!("/homeservers/{sub}/registration-tokens");
    dana.post(&tokens_path, &[("uses", "0"), ("valid_until", "")])
        .await;
    assert!(dana
        .flash()
        .await
        .to_string()
        .contains("whole number from 1"));
    dana.post(&tokens_path, &[("uses", ""), ("valid_until", "2020-01-01")])
        .await;
    assert!(dana.flash().await.to_string().contains("from today on"));
    dana.post(&tokens_path, &[("uses", "1"), ("valid_until", "")])
        .await;
    let tokens = api_with(&mut dana, "host_settings", &[("id", &sub)]).await["tokens"].clone();
    assert_eq!(tokens.as_array().unwrap().len(), 1, "{tokens}");
    let once = tokens[0]["token"].as_str().unwrap().to_string();
    assert_eq!(tokens[0]["used"], "0 of 1");
    let (status, body) = register(&url, "eve", Some(&once)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = register(&url, "frank", Some(&once)).await;
    assert_ne!(status, 200, "a token past its uses is refused");
    let tokens = api_with(&mut dana, "host_settings", &[("id", &sub)]).await["tokens"].clone();
    assert_eq!(tokens[0]["used"], "1 of 1");
    assert_eq!(tokens[0]["usable"], false);

    // A token past its expiry is refused (Synapse checks expiry by its own clock).
    let admin = domain::homeservers::manage::access(
        &app.state.portal,
        app_customer(&app, &sub).await,
        homeserver,
    )
    .await
    .unwrap();
    let expiring = domain::homeservers::manage::create_token(
        &app.state.portal,
        &domain::audit::RequestMeta::default(),
        domain::audit::Actor::System,
        &admin,
        None,
        Some(domain::homeservers::manage::wall_clock_ms() + 1_000),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (status, _) = register(&url, "frank", Some(&expiring.token)).await;
    assert_ne!(status, 200, "a token past its expiry is refused");
    // Deleted, a token is gone.
    dana.post(
        &format!("{tokens_path}/delete"),
        &[("token", &expiring.token)],
    )
    .await;
    assert!(dana.flash().await.to_string().contains("was deleted"));
    let tokens = api_with(&mut dana, "host_settings", &[("id", &sub)]).await["tokens"].clone();
    assert_eq!(tokens.as_array().unwrap().len(), 1);

    // Users: added with a password shown once, which signs in.
    let users_path = format!("/homeservers/{sub}/users");
    dana.post(&users_path, &[("name", "Carol!")]).await;
    assert!(dana
        .flash()
        .await
        .to_string()
        .contains("lower-case letters"));
    let added = dana
        .post(&users_path, &[("name", "carol")])
        .await
        .text()
        .await
        .unwrap();
    assert!(added.contains("@carol:dana-home.localhost"), "{added}");
    let carol_password = input_value(&added, "user-password");
    assert!(
        common::browser::database_mentions(&app.state.portal.db, &carol_password)
            .await
            .is_empty(),
        "the password is not kept"
    );
    let http = domain::homeservers::synapse::client();
    let carol = domain::homeservers::synapse::login(&http, &url, "carol", &carol_password)
        .await
        .expect("the added user signs in");
    dana.post(&users_path, &[("name", "carol")]).await;
    assert!(dana.flash().await.to_string().contains("taken"));

    // A password reset signs the user's devices out; the new password signs in.
    let reset = dana
        .post(
            &format!("{users_path}/reset-password"),
            &[("user", "@carol:dana-home.localhost")],
        )
        .await
        .text()
        .await
        .unwrap();
    let new_password = input_value(&reset, "user-password");
    assert_ne!(new_password, carol_password);
    let whoami = |token: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            http.get(format!("{url}/_matrix/client/v3/account/whoami"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(whoami(carol.access_token.clone()).await, 401, "signed out");
    assert!(
        domain::homeservers::synapse::login(&http, &url, "carol", &carol_password)
            .await
            .is_err()
    );
    domain::homeservers::synapse::login(&http, &url, "carol", &new_password)
        .await
        .expect("the new password signs in");

    // The portal's own user and other servers' users cannot be changed.
    dana.post(
        &format!("{users_path}/reset-password"),
        &[("user", "@customer-portal:dana-home.localhost")],
    )
    .await;
    assert!(dana.flash().await.to_string().contains("cannot be changed"));
    dana.post(
        &format!("{users_path}/deactivate"),
        &[("user", "@carol:elsewhere.example"), ("confirm", "yes")],
    )
    .await;
    assert!(dana.flash().await.to_string().contains("no such user"));

    // Deactivation needs its box ticked, then the user can no longer sign in.
    dana.post(
        &format!("{users_path}/deactivate"),
        &[("user", "@carol:dana-home.localhost")],
    )
    .await;
    assert!(dana.flash().await.to_string().contains("to confirm"));
    assert!(
        domain::homeservers::synapse::login(&http, &url, "carol", &new_password)
            .await
            .is_ok()
    );
    dana.post(
        &format!("{users_path}/deactivate"),
        &[("user", "@carol:dana-home.localhost"), ("confirm", "yes")],
    )
    .await;
    assert!(dana
        .flash()
        .await
        .to_string()
        .contains("can no longer sign in"));
    assert!(
        domain::homeservers::synapse::login(&http, &url, "carol", &new_password)
            .await
            .is_err()
    );

    // The list pages 25 at a time.
    for n in 0..24 {
        domain::homeservers::synapse::create_user(
            &http,
            &url,
            &admin.token,
            &format!("@user{n:02}:dana-home.localhost"),
            PASSWORD,
            false,
        )
        .await
        .unwrap();
    }
    let first = api_with(&mut dana, "host_users", &[("id", &sub), ("from", "0")]).await;
    // admin, carol, customer-portal, eve, the guest is not listed, 24 users.
    assert_eq!(first["total"], 28, "{first}");
    assert_eq!(first["users"].as_array().unwrap().len(), 25);
    assert_eq!(first["next"], 25);
    assert_eq!(first["showing"], "Users 1–25 of 28");
    let portal_row = first["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == "@customer-portal:dana-home.localhost")
        .unwrap()
        .clone();
    assert_eq!(portal_row["portal"], true);
    let carol_row = first["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == "@carol:dana-home.localhost")
        .unwrap()
        .clone();
    assert_eq!(carol_row["deactivated"], true);
    let year = time::OffsetDateTime::now_utc().year().to_string();
    assert!(
        carol_row["created"].as_str().unwrap().contains(&year),
        "created today (Synapse's creation_ts is in ms): {carol_row}"
    );
    let second = api_with(&mut dana, "host_users", &[("id", &sub), ("from", "25")]).await;
    assert_eq!(second["users"].as_array().unwrap().len(), 3);
    assert_eq!(second["next"], serde_json::Value::Null);
    assert_eq!(second["previous"], 0);
    let page = dana
        .get(&format!("{users_path}?from=25"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Users 26–28 of 28") && page.contains("Previous users"),
        "{page}"
    );

    // Open registration and federation on again.
    dana.post(
        &settings_path,
        &[("registration", "open"), ("federation", "on")],
    )
    .await;
    applied(&mut dana, &sub, &url).await;
    let (status, body) = register(&url, "grace", None).await;
    assert_eq!(status, 200, "open: {body}");
    assert!(federation_answers(&url).await, "federation answers again");
    assert_eq!(register_guest(&url).await, 403, "guests off again");

    // The plan's limit follows the plan.
    domain::on_db!(&app.state.portal.db, pool => sqlx::query(
        "UPDATE subscriptions SET plan_id = 'business' WHERE id = $1"
    )
    .bind(uuid::Uuid::parse_str(&sub).unwrap())
    .execute(pool)
    .await
    .map(|_| ())
    .unwrap());
    app.state.portal.hosting.wake.notify_one();
    eventually("the new plan's limit", || async {
        std::fs::read_to_string(data.join("portal.yaml"))
            .is_ok_and(|c| c.contains("max_mau_value: 250\n"))
    })
    .await;
    assert_eq!(
        api_with(&mut dana, "host_settings", &[("id", &sub)]).await["max_monthly_active_users"],
        250
    );
    eventually("the homeserver restarted with the new limit", || {
        domain::homeservers::synapse::healthy(&http, &url)
    })
    .await;

    // Backups: a room made before the backup is there after the restore, one made after is
    // gone.
    let grace = domain::homeservers::synapse::login(&http, &url, "grace", PASSWORD)
        .await
        .unwrap();
    let create_room = |name: &'static str| {
        let (http, url, token) = (http.clone(), url.clone(), grace.access_token.clone());
        async move {
            let response = http
                .post(format!("{url}/_matrix/client/v3/createRoom"))
                .bearer_auth(token)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::json!({ "name": name }).to_string())
                .send()
                .await
                .unwrap();
            let body: serde_json::Value =
                serde_json::from_str(&response.text().await.unwrap()).unwrap();
            body["room_id"].as_str().unwrap().to_string()
        }
    };
    let joined = || {
        let (http, url, token) = (http.clone(), url.clone(), grace.access_token.clone());
        async move {
            let response = http
                .get(format!("{url}/_matrix/client/v3/joined_rooms"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let body: serde_json::Value =
                serde_json::from_str(&response.text().await.unwrap()).unwrap();
            body["joined_rooms"].to_string()
        }
    };
    // The hourly job made the first backup as soon as the homeserver ran.
    let backups = host(&mut dana, &sub).await["backups"].clone();
    assert_eq!(backups.as_array().unwrap().len(), 1, "{backups}");
    assert_eq!(backups[0]["state_key"], "backups.state_done");
    let first = backups[0]["id"].as_str().unwrap().to_string();
    let before = create_room("before").await;
    // An hour later none is due; a day later the next one is made.
    app.clock.advance(time::Duration::hours(1));
    app.run_jobs().await;
    assert_eq!(
        host(&mut dana, &sub).await["backups"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.clock.advance(time::Duration::hours(23));
    app.run_jobs().await;
    // A day went by on the portal's clock: Dana signs in again.
    let mut dana = Browser::new(&app);
    dana.sign_in("dana@example.com", PASSWORD).await;
    let backups = host(&mut dana, &sub).await["backups"].clone();
    assert_eq!(backups.as_array().unwrap().len(), 2, "{backups}");
    let backup = backups[0]["id"].as_str().unwrap().to_string();
    assert_ne!(backup, first, "newest first");
    let after = create_room("after").await;
    assert!(joined().await.contains(&after));

    let restore_path = format!("/homeservers/{sub}/backups/restore");
    dana.post(&restore_path, &[("backup", &backup)]).await;
    assert!(dana.flash().await.to_string().contains("to confirm"));
    dana.post(&restore_path, &[("backup", &backup), ("confirm", "yes")])
        .await;
    assert!(dana.flash().await.to_string().contains("being restored"));
    eventually("the restore", || async {
        events(&app, homeserver)
            .await
            .contains(&"restored".to_string())
    })
    .await;
    eventually("the restored homeserver's health", || {
        domain::homeservers::synapse::healthy(&http, &url)
    })
    .await;
    assert_eq!(
        host(&mut dana, &sub).await["state_key"],
        "homeserver.state_running"
    );
    let rooms = joined().await;
    assert!(rooms.contains(&before), "made before the backup: {rooms}");
    assert!(!rooms.contains(&after), "made after the backup: {rooms}");

    // A day later a third is made, and only the number kept (two here) stay: the oldest is
    // deleted with its files.
    app.clock.advance(time::Duration::hours(24));
    app.run_jobs().await;
    let mut dana = Browser::new(&app);
    dana.sign_in("dana@example.com", PASSWORD).await;
    let backups = host(&mut dana, &sub).await["backups"].clone();
    assert_eq!(backups.as_array().unwrap().len(), 2, "{backups}");
    assert!(!backups.to_string().contains(&first), "the oldest is gone");
    let on_disk = std::fs::read_dir(data.join("backups")).unwrap().count();
    assert_eq!(on_disk, 2);

    // Another customer reaches none of it.
    let mut cleo = Browser::new(&app);
    cleo.sign_up_verified("cleo@example.com", PASSWORD, "Cleo")
        .await;
    for (path, form) in [
        (settings_path.clone(), vec![("registration", "closed")]),
        (tokens_path.clone(), vec![("uses", "1")]),
        (
            format!("{tokens_path}/delete"),
            vec![("token", once.as_str())],
        ),
        (users_path.clone(), vec![("name", "mallory")]),
        (
            format!("{users_path}/reset-password"),
            vec![("user", "@admin:dana-home.localhost")],
        ),
        (
            format!("{users_path}/deactivate"),
            vec![("user", "@admin:dana-home.localhost"), ("confirm", "yes")],
        ),
        (
            format!("/homeservers/{sub}/backups/restore"),
            vec![
                ("backup", backups[0]["id"].as_str().unwrap()),
                ("confirm", "yes"),
            ],
        ),
    ] {
        assert_eq!(cleo.post(&path, &form).await.status(), 404, "{path}");
    }
    for loader in ["host_settings", "host_users"] {
        let response = app
            .client
            .post(app.url(&format!("/api/{loader}")))
            .header(reqwest::header::ORIGIN, &app.address)
            .header(
                reqwest::header::COOKIE,
                cleo.cookie.clone().unwrap_or_default(),
            )
            .form(&[("id", sub.as_str()), ("from", "0")])
            .send()
            .await
            .unwrap();
        let text = response.text().await.unwrap();
        assert!(!text.contains("dana-home"), "{loader}: {text}");
    }
    let theirs = cleo.get(&users_path).await.text().await.unwrap();
    assert!(!theirs.contains("@admin:dana-home.localhost"));
    assert!(
        domain::homeservers::synapse::login(&http, &url, "grace", PASSWORD)
            .await
            .is_ok()
    );

    app.cleanup().await;
}

async fn app_customer(app: &TestApp, sub: &str) -> uuid::Uuid {
    domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT customer_id FROM subscriptions WHERE id = $1"
    )
    .bind(uuid::Uuid::parse_str(sub).unwrap())
    .fetch_one(pool)
    .await
    .unwrap())
}

/// A portal that stops in the middle of provisioning (here: its run dropped once Synapse was
/// started, before it answered and before any admin was registered; its lease left behind to
/// lapse, as a dead replica's does) finishes it once when the job runs again: one data
/// directory, the same port, one service user and one first admin.
async fn a_provisioning_cut_short_finishes_once(backend: Backend) {
    // Behind a reverse proxy: clients reach each homeserver at https://<server name>.
    let mut args = SELLER.to_vec();
    args.extend(["--homeserver-url", "https://{server_name}"]);
    let app = common::spawn_app_with_homeservers(backend, &args).await;
    let (mut hana, sub, homeserver) = ordered_and_paid(&app, "hana@example.com", "hana-home").await;
    let data = app
        .data_dir
        .join("homeservers")
        .join(homeserver.to_string());

    // The first run, cut short once the supervisor started Synapse.
    let started = async {
        while !data.join("process.pid").exists() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        _ = domain::homeservers::lifecycle::provision(&app.state.portal, homeserver) => {
            panic!("provisioning finished before it was cut short")
        }
        _ = started => {}
    }
    let cut: (String, Option<i32>, Option<String>) = domain::on_db!(&app.state.portal.db, pool => sqlx::query_as(
        "SELECT state, port, service_token FROM homeservers WHERE id = $1"
    )
    .bind(homeserver)
    .fetch_one(pool)
    .await
    .unwrap());
    assert_eq!(cut.0, "provisioning");
    assert!(cut.1.is_some() && cut.2.is_none(), "{cut:?}");
    domain::on_db!(&app.state.portal.db, pool => sqlx::query("DELETE FROM leases WHERE name = $1")
        .bind(format!("provision:{homeserver}"))
        .execute(pool)
        .await
        .map(|_| ())
        .unwrap());

    // The job runs again and finishes it, once.
    app.run_jobs().await;
    let running = host(&mut hana, &sub).await;
    assert_eq!(
        running["state_key"], "homeserver.state_running",
        "{running}"
    );
    let port: Option<i32> = domain::on_db!(&app.state.portal.db, pool => sqlx::query_scalar(
        "SELECT port FROM homeservers WHERE id = $1"
    )
    .bind(homeserver)
    .fetch_one(pool)
    .await
    .unwrap());
    assert_eq!(port, cut.1, "the same port");
    let port = port.unwrap();

    // The page and Synapse give the public URL; the proxy's map routes it to the port.
    assert_eq!(running["url"], "https://hana-home.localhost");
    let config = std::fs::read_to_string(data.join("portal.yaml")).unwrap();
    assert!(
        config.contains("public_baseurl: \"https://hana-home.localhost/\""),
        "{config}"
    );
    // Behind the proxy, Synapse tells other servers to federate on port 443.
    let well_known = reqwest::get(format!("http://127.0.0.1:{port}/.well-known/matrix/server"))
        .await
        .unwrap();
    assert_eq!(well_known.status(), 200);
    let well_known: serde_json::Value =
        serde_json::from_str(&well_known.text().await.unwrap()).unwrap();
    assert_eq!(well_known["m.server"], "hana-home.localhost:443");
    let map_path = app.data_dir.join("homeservers").join("proxy.map");
    let line = format!("hana-home.localhost 127.0.0.1:{port};");
    eventually("the proxy's map", || async {
        std::fs::read_to_string(&map_path).is_ok_and(|map| map.contains(&line))
    })
    .await;
    let directories = std::fs::read_dir(app.data_dir.join("homeservers"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(directories, 1, "one data directory");
    let customer = app_customer(&app, &sub).await;
    let admin = domain::homeservers::manage::access(&app.state.portal, customer, homeserver)
        .await
        .unwrap();
    let users = domain::homeservers::manage::users(&app.state.portal, &admin, 0)
        .await
        .unwrap();
    let names: Vec<&str> = users.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "@admin:hana-home.localhost",
            "@customer-portal:hana-home.localhost"
        ]
    );
    let provisioned = events(&app, homeserver)
        .await
        .iter()
        .filter(|e| *e == "running")
        .count();
    assert_eq!(provisioned, 1);

    // Staff: a running homeserver has no provisioning to retry; a staff suspension stops it
    // and holds while its billing is in good standing, until staff resume it.
    use domain::homeservers::lifecycle::{staff, StaffAction};
    let portal = &app.state.portal;
    let meta = domain::audit::RequestMeta::default();
    let system = domain::audit::Actor::System;
    assert!(!staff(
        portal,
        &meta,
        system,
        homeserver,
        StaffAction::RetryProvisioning
    )
    .await
    .unwrap());
    assert!(
        !staff(portal, &meta, system, homeserver, StaffAction::Resume)
            .await
            .unwrap()
    );
    assert!(
        staff(portal, &meta, system, homeserver, StaffAction::Suspend)
            .await
            .unwrap()
    );
    app.run_jobs().await;
    assert_eq!(
        host(&mut hana, &sub).await["state_key"],
        "homeserver.state_suspended"
    );
    let url = format!("http://127.0.0.1:{port}");
    let http = domain::homeservers::synapse::client();
    eventually("the stop by staff", || async {
        !std::fs::read_to_string(&map_path).unwrap().contains(&line)
    })
    .await;
    eventually("the stop by staff", || async {
        !domain::homeservers::synapse::healthy(&http, &url).await
    })
    .await;
    app.clock.advance(time::Duration::minutes(2));
    app.run_jobs().await;
    assert_eq!(
        host(&mut hana, &sub).await["state_key"],
        "homeserver.state_suspended",
        "billing in good standing does not lift staff's suspension"
    );
    assert!(
        staff(portal, &meta, system, homeserver, StaffAction::Resume)
            .await
            .unwrap()
    );
    app.run_jobs().await;
    assert_eq!(
        host(&mut hana, &sub).await["state_key"],
        "homeserver.state_running"
    );
    eventually("the start after staff resumed it", || {
        domain::homeservers::synapse::healthy(&http, &url)
    })
    .await;

    app.cleanup().await;
}

both_backends!(
    a_paid_homeserver_runs_and_its_first_admin_signs_in,
    settings_tokens_users_and_backups_act_on_the_running_homeserver,
    a_provisioning_cut_short_finishes_once,
);
