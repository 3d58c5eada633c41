//! Synapse's HTTP APIs as the portal uses them: health, shared-secret registration, password
//! sign-in, and the admin API (server version, registration tokens, users).

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

/// A user id in a path of the admin API.
fn user_path(user_id: &str) -> String {
    percent_encoding::utf8_percent_encode(user_id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Sends an admin API request with the portal's token, and reads a JSON answer.
async fn admin<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    token: &str,
    body: Option<&serde_json::Value>,
) -> Result<T, SynapseError> {
    let mut request = request.bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    json(response).await
}

/// Synapse answers some flags as 0/1 and others as true/false.
fn flag<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::Number(n) => n.as_i64().unwrap_or(0) != 0,
        _ => false,
    })
}

/// A registration token, as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegistrationToken {
    pub token: String,
    /// How many registrations it allows (None: any number).
    pub uses_allowed: Option<u32>,
    /// Registrations begun with it and not finished.
    pub pending: u32,
    /// Registrations finished with it.
    pub completed: u32,
    /// When it stops being accepted, in ms since the epoch (None: never).
    pub expiry_time: Option<i64>,
}

pub async fn registration_tokens(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> Result<Vec<RegistrationToken>, SynapseError> {
    #[derive(Deserialize)]
    struct List {
        registration_tokens: Vec<RegistrationToken>,
    }
    let list: List = admin(
        http.get(format!("{base}/_synapse/admin/v1/registration_tokens"))
            .timeout(Duration::from_secs(3)),
        token,
        None,
    )
    .await?;
    Ok(list.registration_tokens)
}

/// Makes a registration token (Synapse chooses its text).
pub async fn create_registration_token(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    uses_allowed: Option<u32>,
    expiry_time: Option<i64>,
) -> Result<RegistrationToken, SynapseError> {
    let body = serde_json::json!({ "uses_allowed": uses_allowed, "expiry_time": expiry_time });
    admin(
        http.post(format!("{base}/_synapse/admin/v1/registration_tokens/new")),
        token,
        Some(&body),
    )
    .await
}

pub async fn delete_registration_token(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    registration_token: &str,
) -> Result<(), SynapseError> {
    let _: serde_json::Value = admin(
        http.delete(format!(
            "{base}/_synapse/admin/v1/registration_tokens/{}",
            user_path(registration_token)
        )),
        token,
        None,
    )
    .await?;
    Ok(())
}

/// A user account, as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    /// The full user id, `@name:server`.
    pub name: String,
    #[serde(default)]
    pub displayname: Option<String>,
    #[serde(deserialize_with = "flag")]
    pub admin: bool,
    #[serde(deserialize_with = "flag")]
    pub deactivated: bool,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub creation_ts: Option<i64>,
}

/// One page of the homeserver's users (deactivated ones included, guests left out), in the
/// order of their ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    pub users: Vec<User>,
    /// Where the next page starts (None: this is the last).
    pub next: Option<u64>,
    pub total: u64,
}

pub async fn users(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    from: u64,
    limit: u32,
) -> Result<UserPage, SynapseError> {
    #[derive(Deserialize)]
    struct List {
        users: Vec<User>,
        #[serde(default)]
        next_token: Option<serde_json::Value>,
        total: u64,
    }
    let list: List = admin(
        http.get(format!(
            "{base}/_synapse/admin/v2/users?from={from}&limit={limit}&guests=false&deactivated=true&order_by=name"
        ))
        .timeout(Duration::from_secs(3)),
        token,
        None,
    )
    .await?;
    // `next_token` is a number in a string (or a number, in older versions).
    let next = list.next_token.and_then(|next| match next {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.as_u64(),
        _ => None,
    });
    Ok(UserPage {
        users: list.users,
        next,
        total: list.total,
    })
}

/// Sets a user's password and signs out all their devices.
pub async fn reset_password(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    user_id: &str,
    new_password: &str,
) -> Result<(), SynapseError> {
    let body = serde_json::json!({ "new_password": new_password, "logout_devices": true });
    let _: serde_json::Value = admin(
        http.post(format!(
            "{base}/_synapse/admin/v1/reset_password/{}",
            user_path(user_id)
        )),
        token,
        Some(&body),
    )
    .await?;
    Ok(())
}

/// Deactivates a user (their messages stay; they can no longer sign in).
pub async fn deactivate(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    user_id: &str,
) -> Result<(), SynapseError> {
    let body = serde_json::json!({ "erase": false });
    let _: serde_json::Value = admin(
        http.post(format!(
            "{base}/_synapse/admin/v1/deactivate/{}",
            user_path(user_id)
        )),
        token,
        Some(&body),
    )
    .await?;
    Ok(())
}

/// Creates a user with a password (the admin API's PUT creates or modifies: ask [`user`]
/// first). Unlike shared-secret registration, this signs no device in.
pub async fn create_user(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    user_id: &str,
    password: &str,
    is_admin: bool,
) -> Result<(), SynapseError> {
    let body = serde_json::json!({ "password": password, "admin": is_admin });
    let _: serde_json::Value = admin(
        http.put(format!(
            "{base}/_synapse/admin/v2/users/{}",
            user_path(user_id)
        )),
        token,
        Some(&body),
    )
    .await?;
    Ok(())
}

/// One user, or None when the homeserver has no such user.
pub async fn user(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    user_id: &str,
) -> Result<Option<User>, SynapseError> {
    let response = http
        .get(format!(
            "{base}/_synapse/admin/v2/users/{}",
            user_path(user_id)
        ))
        .bearer_auth(token)
        .send()
        .await
        .map_err(unreachable)?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    // The single-user answer has `name` too.
    json(response).await.map(Some)
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
