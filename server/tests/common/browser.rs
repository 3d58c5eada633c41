//! A browser for tests over HTTP: keeps its session cookie, sends our Origin on posts.

use super::TestApp;
use reqwest::{header, StatusCode};

/// The session cookie a response sets (`name=value`), if any.
pub fn set_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("portal_session="))
        .map(|v| v.split(';').next().unwrap().to_string())
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string()
}

/// A browser: remembers its session cookie, sends our Origin on posts.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub cookie: Option<String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self { app, cookie: None }
    }

    pub fn remember(&mut self, response: &reqwest::Response) {
        if let Some(cookie) = set_cookie(response) {
            self.cookie = Some(cookie);
        }
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .app
            .client
            .post(self.app.url(path))
            .header(header::ORIGIN, &self.app.address)
            .form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = request.send().await.unwrap();
        self.remember(&response);
        response
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        let mut request = self.app.client.get(self.app.url(path));
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = request.send().await.unwrap();
        self.remember(&response);
        response
    }

    /// Who the portal thinks is signed in (the header's server function).
    pub async fn viewer(&mut self) -> Option<String> {
        let mut request = self
            .app
            .client
            .post(self.app.url("/api/viewer"))
            .header(header::ORIGIN, &self.app.address)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let value: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        value["display_name"].as_str().map(str::to_string)
    }

    pub async fn sign_up(&mut self, email: &str, password: &str, name: &str) -> reqwest::Response {
        self.post(
            "/sign-up",
            &[
                ("email", email),
                ("password", password),
                ("display_name", name),
                ("age", "on"),
                ("terms", "on"),
            ],
        )
        .await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> reqwest::Response {
        self.post("/sign-in", &[("email", email), ("password", password)])
            .await
    }

    /// The text of the flash alert or notice the next page shows.
    pub async fn flash(&mut self) -> serde_json::Value {
        let mut request = self
            .app
            .client
            .post(self.app.url("/api/flash"))
            .header(header::ORIGIN, &self.app.address)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let text = request.send().await.unwrap().text().await.unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// What a server function answers the browser's session.
/// A page loader that takes arguments (`form`), called as the page calls it.
pub async fn api_with(
    browser: &mut Browser<'_>,
    name: &str,
    form: &[(&str, &str)],
) -> serde_json::Value {
    let response = browser
        .app
        .client
        .post(browser.app.url(&format!("/api/{name}")))
        .header(header::ORIGIN, &browser.app.address)
        .header(header::COOKIE, browser.cookie.clone().unwrap_or_default())
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("/api/{name}: {status} {text}: {e}"))
}

/// A page loader (a server function without arguments), called as the page calls it.
pub async fn api(browser: &mut Browser<'_>, name: &str) -> serde_json::Value {
    api_with(browser, name, &[]).await
}

impl Browser<'_> {
    /// Signs up, follows the verification link from the outbox and signs in.
    pub async fn sign_up_verified(&mut self, email: &str, password: &str, name: &str) {
        self.sign_up(email, password, name).await;
        let text: String = domain::on_db!(&self.app.state.portal.db, pool => sqlx::query_scalar(
            "SELECT text_body FROM outbox_emails WHERE recipient = $1 ORDER BY created_at LIMIT 1"
        )
        .bind(email)
        .fetch_one(pool)
        .await
        .unwrap());
        let link = text
            .split_whitespace()
            .find(|w| w.contains("/verify-email/"))
            .expect("a verification link");
        let path = link[link.find("/verify-email/").unwrap()..].to_string();
        // The link opens a page; its button POSTs.
        assert_eq!(self.get(&path).await.status(), 200);
        self.post(&path, &[]).await;
        self.flash().await;
        self.sign_in(email, password).await;
    }

    /// Saves billing details of a consumer in `country`.
    pub async fn billing_details(&mut self, country: &str) {
        self.post(
            "/billing",
            &[
                ("name", "Ada Lovelace"),
                ("address_line1", "Unter den Linden 1"),
                ("postal_code", "10117"),
                ("city", "Berlin"),
                ("country", country),
                ("billing_email", "billing@example.com"),
            ],
        )
        .await;
        let flash = self.flash().await;
        assert_eq!(
            flash["notice"], "Your billing details were saved.",
            "{flash}"
        );
    }
}

/// Every (table, column) of the database whose text holds `needle`: proves that something
/// (a card number, a secret) was never stored.
pub async fn database_mentions(db: &domain::db::Db, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for table in db.table_names().await.unwrap() {
        for column in db.column_names(&table).await.unwrap() {
            let sql = format!(
                "SELECT COUNT(*) FROM \"{table}\" WHERE CAST(\"{column}\" AS TEXT) LIKE $1"
            );
            let pattern = format!("%{needle}%");
            let count: i64 = domain::on_db!(db, pool => sqlx::query_scalar(&sql)
                .bind(&pattern)
                .fetch_one(pool)
                .await
                .unwrap());
            if count > 0 {
                found.push(format!("{table}.{column}"));
            }
        }
    }
    found
}
