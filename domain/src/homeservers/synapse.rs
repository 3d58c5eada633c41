//! Synapse's HTTP APIs as the portal uses them: health, shared-secret registration, password
//! sign-in, and the admin API's server version.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use std::time::Duration;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("a reqwest client with timeouts builds")
}

#[derive(Debug, thiserror::Error)]
pub enum SynapseError {
    #[error("the homeserver did not answer: {0}")]
    Unreachable(String),
    #[error("the user name is taken")]
    UserTaken,
    #[error("the homeserver refused: {0}")]
    Refused(String),
}

fn unreachable(error: reqwest::Error) -> SynapseError {
    // Without the URL: it may carry nothing secret, but errors stay short and uniform.
    SynapseError::Unreachable(error.without_url().to_string())
}

/// Whether the homeserver answers `/health` with OK.
pub async fn healthy(http: &reqwest::Client, base: &str) -> bool {
    match http.get(format!("{base}/health")).send().await {
        Ok(response) => response.status().is_success(),
        Err(_) => false,
    }
}

/// A response body as JSON (reqwest's `json` feature is not built; serde_json reads it).
async fn json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, SynapseError> {
    let body = response.bytes().await.map_err(unreachable)?;
    serde_json::from_slice(&body)
        .map_err(|e| SynapseError::Refused(format!("an answer that is not the expected JSON: {e}")))
}

async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<reqwest::Response, SynapseError> {
    http.post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(unreachable)
}

#[derive(Deserialize)]
struct MatrixError {
    #[serde(default)]
    errcode: String,
    #[serde(default)]
    error: String,
}

async fn refusal(response: reqwest::Response) -> SynapseError {
    let status = response.status();
    match json::<MatrixError>(response).await {
        Ok(e) if e.errcode == "M_USER_IN_USE" => SynapseError::UserTaken,
        Ok(e) => SynapseError::Refused(format!("{status} {} {}", e.errcode, e.error)),
        Err(_) => SynapseError::Refused(status.to_string()),
    }
}

/// The MAC of Synapse's shared-secret registration: HMAC-SHA1 keyed by the shared secret over
/// nonce, user, password and "admin" or "notadmin", joined by NUL bytes, in hex.
pub fn registration_mac(
    secret: &str,
    nonce: &str,
    user: &str,
    password: &str,
    admin: bool,
) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(nonce.as_bytes());
    mac.update(b"\0");
    mac.update(user.as_bytes());
    mac.update(b"\0");
    mac.update(password.as_bytes());
    mac.update(b"\0");
    mac.update(if admin {
        b"admin".as_slice()
    } else {
        b"notadmin".as_slice()
    });
    hex::encode(mac.finalize().into_bytes())
}

#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    pub user_id: String,
    pub access_token: String,
}

/// Registers `user` through `/_synapse/admin/v1/register` (nonce, then the MAC).
pub async fn register(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    user: &str,
    password: &str,
    admin: bool,
) -> Result<Session, SynapseError> {
    #[derive(Deserialize)]
    struct Nonce {
        nonce: String,
    }
    let url = format!("{base}/_synapse/admin/v1/register");
    let response = http.get(&url).send().await.map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    let nonce: Nonce = json(response).await?;
    let body = serde_json::json!({
        "nonce": nonce.nonce,
        "username": user,
        "password": password,
        "admin": admin,
        "mac": registration_mac(secret, &nonce.nonce, user, password, admin),
    });
    let response = post_json(http, &url, &body).await?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    json(response).await
}

/// Signs in with a password (`m.login.password`).
pub async fn login(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> Result<Session, SynapseError> {
    let body = serde_json::json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": user },
        "password": password,
        "initial_device_display_name": "Customer portal",
    });
    let response = post_json(http, &format!("{base}/_matrix/client/v3/login"), &body).await?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    json(response).await
}

/// The Synapse version, from the admin API.
pub async fn server_version(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<String, SynapseError> {
    #[derive(Deserialize)]
    struct Version {
        server_version: String,
    }
    let response = http
        .get(format!("{base}/_synapse/admin/v1/server_version"))
        .bearer_auth(token)
        // Asked while a page loads: a homeserver that hangs does not hold the page long.
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    let version: Version = json(response).await?;
    Ok(version.server_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registration_mac_follows_synapses_recipe() {
        // Computed independently with Python's hmac module:
        // hmac.new(b"secret", b"abc\x00alice\x00pw\x00admin", hashlib.sha1).hexdigest()
        assert_eq!(
            registration_mac("secret", "abc", "alice", "pw", true),
            "dc5ed98b283077684552e3f72d67f26b3366bf58"
        );
        assert_ne!(
            registration_mac("secret", "abc", "alice", "pw", false),
            registration_mac("secret", "abc", "alice", "pw", true)
        );
    }
}
