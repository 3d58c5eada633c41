//! Sign-in with external providers. OpenID Connect (Google, and any provider from
//! configuration) through the `openidconnect` crate: discovery, the authorization code flow
//! with PKCE, and the ID token checks (signature, issuer, audience, nonce, expiry). X through
//! the `oauth2` crate: OAuth 2.0 authorization code with PKCE, the identity being the X user id
//! from its API (X gives no email address; the sign-up form asks for one and verifies it).
//! The flow's state, nonce and PKCE verifier travel in a short-lived signed cookie of their
//! own, used once.

use openidconnect::{
    core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata},
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::RwLock;

/// Discovery documents and signing keys are fetched again after this long.
const METADATA_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// In URLs and in the identities table: `google`, `oidc`.
    pub id: &'static str,
    /// On the button: "Continue with …".
    pub label: String,
    pub kind: ProviderKind,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Clone)]
pub enum ProviderKind {
    /// OpenID Connect, found by discovery at the issuer.
    Oidc { issuer: String },
    /// Plain OAuth 2.0 with PKCE and a "who am I" API answering `{"data": {"id", "name"}}`.
    X {
        authorize_url: String,
        token_url: String,
        user_url: String,
    },
}

pub struct Provider {
    pub config: ProviderConfig,
    metadata: RwLock<Option<(Instant, CoreProviderMetadata)>>,
}

#[derive(Clone, Default)]
pub struct Providers(Arc<Vec<Provider>>);

impl Providers {
    pub fn new(configs: Vec<ProviderConfig>) -> Self {
        Self(Arc::new(
            configs
                .into_iter()
                .map(|config| Provider {
                    config,
                    metadata: RwLock::new(None),
                })
                .collect(),
        ))
    }

    pub fn get(&self, id: &str) -> Option<&Provider> {
        self.0.iter().find(|p| p.config.id == id)
    }

    /// (id, label) of every configured provider, for the buttons.
    pub fn buttons(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|p| (p.config.id.to_string(), p.config.label.clone()))
            .collect()
    }
}

/// What the flow cookie carries between the start and the callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowState {
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// `sign_in` or `link`.
    pub intent: String,
    pub started_at: i64,
    /// The wall-clock second the flow started, for the provider's `auth_time` (the provider's
    /// clock is the real one, whatever clock the portal's services are given).
    #[serde(default)]
    pub started_unix: i64,
}

/// Seconds since the epoch, from the system clock.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How far the provider's clock may be behind ours when its `auth_time` is compared.
pub const AUTH_TIME_SKEW_SECONDS: i64 = 60;

impl FlowState {
    /// Whether `identity` signed in at the provider after this flow started (re-authentication
    /// asked for `prompt=login`; a provider that ignored it, or that gives no `auth_time`, has
    /// not proven a fresh sign-in).
    pub fn fresh_sign_in(&self, identity: &domain::accounts::identities::ExternalIdentity) -> bool {
        identity
            .auth_time
            .is_some_and(|t| t >= self.started_unix - AUTH_TIME_SKEW_SECONDS)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("provider configuration: {0}")]
    Config(String),
    #[error("discovery at {0} failed: {1}")]
    Discovery(String, String),
    #[error("code exchange failed: {0}")]
    Exchange(String),
    #[error("the provider sent no ID token")]
    NoIdToken,
    #[error("the ID token was refused: {0}")]
    IdToken(String),
    #[error("the user API answered wrongly: {0}")]
    UserApi(String),
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        // Following redirects here would open the door to SSRF through a provider's answers.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client with these settings builds")
}

impl Provider {
    async fn metadata(&self) -> Result<CoreProviderMetadata, OidcError> {
        if let Some((at, metadata)) = self.metadata.read().await.as_ref() {
            if at.elapsed() < METADATA_TTL {
                return Ok(metadata.clone());
            }
        }
        let ProviderKind::Oidc { issuer } = &self.config.kind else {
            return Err(OidcError::Config("not an OpenID Connect provider".into()));
        };
        let issuer_text = issuer.clone();
        let issuer =
            IssuerUrl::new(issuer_text.clone()).map_err(|e| OidcError::Config(e.to_string()))?;
        // Checks that the document names the configured issuer, and fetches the signing keys.
        let metadata = CoreProviderMetadata::discover_async(issuer, &http_client())
            .await
            .map_err(|e| OidcError::Discovery(issuer_text, e.to_string()))?;
        *self.metadata.write().await = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    fn redirect_url(&self, public_url: &str) -> Result<RedirectUrl, OidcError> {
        RedirectUrl::new(format!("{public_url}/auth/{}/callback", self.config.id))
            .map_err(|e| OidcError::Config(e.to_string()))
    }

    /// The provider's authorization URL and the state to keep in the flow cookie. With
    /// `fresh_login`, the provider asks the person to sign in again (re-authentication).
    pub async fn start(
        &self,
        public_url: &str,
        intent: &str,
        fresh_login: bool,
        now_ms: i64,
    ) -> Result<(String, FlowState), OidcError> {
        if let ProviderKind::X { .. } = &self.config.kind {
            return self.start_oauth2(public_url, intent, now_ms);
        }
        let metadata = self.metadata().await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect_url(public_url)?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge);
        if fresh_login {
            request = request
                .add_prompt(openidconnect::core::CoreAuthPrompt::Login)
                .set_max_age(Duration::ZERO);
        }
        let (url, state, nonce) = request.url();
        Ok((
            url.to_string(),
            FlowState {
                provider: self.config.id.to_string(),
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                intent: intent.to_string(),
                started_at: now_ms,
                started_unix: unix_now(),
            },
        ))
    }

    /// Exchanges the code and checks the ID token against the flow's nonce.
    pub async fn finish(
        &self,
        public_url: &str,
        flow: &FlowState,
        code: &str,
    ) -> Result<domain::accounts::identities::ExternalIdentity, OidcError> {
        if let ProviderKind::X { .. } = &self.config.kind {
            return self.finish_oauth2(public_url, flow, code).await;
        }
        let metadata = self.metadata().await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect_url(public_url)?);
        let http = http_client();
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Config(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&http)
            .await
            .map_err(|e| OidcError::Exchange(e.to_string()))?;
        let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(flow.nonce.clone()))
            .map_err(|e| OidcError::IdToken(e.to_string()))?;
        Ok(domain::accounts::identities::ExternalIdentity {
            provider: self.config.id.to_string(),
            subject: claims.subject().as_str().to_string(),
            email: claims.email().map(|e| e.as_str().to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string()),
            auth_time: claims.auth_time().map(|t| t.timestamp()),
        })
    }
}

/// X: OAuth 2.0 authorization code with PKCE (no OpenID Connect, so no nonce and no ID token).
impl Provider {
    fn oauth2_client(
        &self,
        public_url: &str,
    ) -> Result<
        oauth2::basic::BasicClient<
            oauth2::EndpointSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointSet,
        >,
        OidcError,
    > {
        let ProviderKind::X {
            authorize_url,
            token_url,
            ..
        } = &self.config.kind
        else {
            return Err(OidcError::Config("not an OAuth 2.0 provider".into()));
        };
        let config = |e: oauth2::url::ParseError| OidcError::Config(e.to_string());
        Ok(
            oauth2::basic::BasicClient::new(oauth2::ClientId::new(self.config.client_id.clone()))
                .set_client_secret(oauth2::ClientSecret::new(self.config.client_secret.clone()))
                .set_auth_uri(oauth2::AuthUrl::new(authorize_url.clone()).map_err(config)?)
                .set_token_uri(oauth2::TokenUrl::new(token_url.clone()).map_err(config)?)
                .set_redirect_uri(
                    oauth2::RedirectUrl::new(format!(
                        "{public_url}/auth/{}/callback",
                        self.config.id
                    ))
                    .map_err(config)?,
                ),
        )
    }

    fn start_oauth2(
        &self,
        public_url: &str,
        intent: &str,
        now_ms: i64,
    ) -> Result<(String, FlowState), OidcError> {
        let client = self.oauth2_client(public_url)?;
        let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        let (url, state) = client
            .authorize_url(oauth2::CsrfToken::new_random)
            .add_scope(oauth2::Scope::new("users.read".into()))
            .add_scope(oauth2::Scope::new("tweet.read".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok((
            url.to_string(),
            FlowState {
                provider: self.config.id.to_string(),
                state: state.secret().clone(),
                nonce: String::new(),
                pkce_verifier: verifier.secret().clone(),
                intent: intent.to_string(),
                started_at: now_ms,
                started_unix: unix_now(),
            },
        ))
    }

    async fn finish_oauth2(
        &self,
        public_url: &str,
        flow: &FlowState,
        code: &str,
    ) -> Result<domain::accounts::identities::ExternalIdentity, OidcError> {
        use oauth2::TokenResponse as _;
        let ProviderKind::X { user_url, .. } = &self.config.kind else {
            return Err(OidcError::Config("not an OAuth 2.0 provider".into()));
        };
        let http = http_client();
        let token = self
            .oauth2_client(public_url)?
            .exchange_code(oauth2::AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(oauth2::PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&http)
            .await
            .map_err(|e| OidcError::Exchange(e.to_string()))?;
        let response = http
            .get(user_url)
            .bearer_auth(token.access_token().secret())
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| OidcError::UserApi(e.to_string()))?;
        let body = response
            .text()
            .await
            .map_err(|e| OidcError::UserApi(e.to_string()))?;
        let me: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| OidcError::UserApi(e.to_string()))?;
        let id = me["data"]["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| OidcError::UserApi("no data.id".into()))?;
        Ok(domain::accounts::identities::ExternalIdentity {
            provider: self.config.id.to_string(),
            subject: id.to_string(),
            email: None,
            email_verified: false,
            name: me["data"]["name"].as_str().map(str::to_string),
            // X says nothing about when the person signed in.
            auth_time: None,
        })
    }
}
