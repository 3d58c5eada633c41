//! Sign-in with OpenID Connect providers (Google, and any provider from configuration) through
//! the `openidconnect` crate: discovery, the authorization code flow with PKCE, and the ID
//! token checks (signature, issuer, audience, nonce, expiry). The flow's state, nonce and PKCE
//! verifier travel in a short-lived signed cookie of their own, used once.

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
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
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
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| OidcError::Config(e.to_string()))?;
        // Checks that the document names the configured issuer, and fetches the signing keys.
        let metadata = CoreProviderMetadata::discover_async(issuer, &http_client())
            .await
            .map_err(|e| OidcError::Discovery(self.config.issuer.clone(), e.to_string()))?;
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
        })
    }
}
