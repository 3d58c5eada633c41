//! Sign-in, sign-up and linking with external providers (see [`crate::oidc`]).

use super::{failure, require_auth, see_other, tr, FormContext};
use crate::oidc::FlowState;
use app::forms::Flash;
use axum::{
    extract::{Path, Query},
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    Form,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use domain::{
    accounts::{
        identities::{
            self, ExternalIdentity, ExternalSignUp, ExternalSignUpOutcome, LinkRefusal,
            PendingIdentity, UnlinkRefusal, PENDING_IDENTITY_KEY,
        },
        profile, signin,
        signup::{email_is_valid, MAX_NAME_LENGTH},
        verification,
    },
    sessions::{AuthState, PendingSecondFactor, AUTH_KEY, PENDING_SECOND_FACTOR_KEY},
};
use serde::Deserialize;
use tower_sessions::cookie::{Cookie, CookieJar, Key, SameSite};

/// The provider's answer must come back within this time.
const FLOW_LIFETIME_MS: i64 = 10 * 60 * 1000;
/// Linking must start within this time of re-authenticating.
const LINK_REAUTH_MS: i64 = 5 * 60 * 1000;
const LINK_REAUTH_KEY: &str = "link_reauthenticated_at";
/// When the signed-in person last confirmed who they are at their provider (accounts without
/// a password or second factor re-authenticate that way).
pub const REAUTHENTICATED_AT_KEY: &str = "reauthenticated_at_provider";

pub async fn recently_confirmed_at_provider(ctx: &FormContext) -> bool {
    ctx.session
        .get::<i64>(REAUTHENTICATED_AT_KEY)
        .await
        .ok()
        .flatten()
        .is_some_and(|at| ctx.now() - at < LINK_REAUTH_MS)
}

fn flow_cookie_name(ctx: &FormContext) -> &'static str {
    if ctx.state.https {
        "__Host-portal_oauth"
    } else {
        "portal_oauth"
    }
}

fn key(ctx: &FormContext) -> Key {
    Key::from(&ctx.state.secrets_session_key)
}

/// The flow cookie's signed `Set-Cookie` value (or its removal with `None`).
fn flow_cookie(ctx: &FormContext, flow: Option<&FlowState>) -> HeaderValue {
    let mut jar = CookieJar::new();
    let value = flow
        .map(|f| URL_SAFE_NO_PAD.encode(serde_json::to_vec(f).unwrap_or_default()))
        .unwrap_or_default();
    let mut cookie = Cookie::new(flow_cookie_name(ctx), value);
    cookie.set_http_only(true);
    cookie.set_secure(ctx.state.https);
    // Lax: the provider sends the browser back with a top-level GET, which carries it.
    cookie.set_same_site(SameSite::Lax);
    cookie.set_path("/");
    cookie.set_max_age(time::Duration::milliseconds(if flow.is_some() {
        FLOW_LIFETIME_MS
    } else {
        0
    }));
    if flow.is_some() {
        jar.signed_mut(&key(ctx)).add(cookie);
    } else {
        jar.add(cookie);
    }
    let text = jar
        .delta()
        .next()
        .map(|c| c.encoded().to_string())
        .unwrap_or_default();
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The flow state from the request's cookie, if it is there, signed by us, and recent.
fn read_flow(ctx: &FormContext, headers: &HeaderMap) -> Option<FlowState> {
    let name = flow_cookie_name(ctx);
    let mut jar = CookieJar::new();
    for header in headers.get_all(header::COOKIE) {
        for part in header.to_str().ok()?.split(';') {
            if let Ok(cookie) = Cookie::parse_encoded(part.trim().to_string()) {
                if cookie.name() == name {
                    jar.add_original(cookie);
                }
            }
        }
    }
    let verified = jar.signed(&key(ctx)).get(name)?;
    let bytes = URL_SAFE_NO_PAD.decode(verified.value()).ok()?;
    let flow: FlowState = serde_json::from_slice(&bytes).ok()?;
    (ctx.now() - flow.started_at < FLOW_LIFETIME_MS).then_some(flow)
}

fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

#[derive(Debug, Default, Deserialize)]
pub struct StartQuery {
    #[serde(default)]
    intent: String,
}

pub async fn start(
    ctx: FormContext,
    Path(provider_id): Path<String>,
    Query(query): Query<StartQuery>,
) -> Response {
    let Some(provider) = ctx.state.providers.get(&provider_id) else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let intent = if query.intent == "reauth" {
        if ctx.auth().await.is_none() {
            return see_other("/sign-in");
        }
        "reauth"
    } else if query.intent == "link" {
        // Linking needs a signed-in account that re-authenticated a moment ago.
        let recent = ctx
            .session
            .get::<i64>(LINK_REAUTH_KEY)
            .await
            .ok()
            .flatten()
            .is_some_and(|at| ctx.now() - at < LINK_REAUTH_MS);
        if ctx.auth().await.is_none() || !recent {
            return see_other("/account");
        }
        "link"
    } else {
        "sign_in"
    };
    match provider
        // Re-authentication asks the provider for a fresh sign-in (prompt=login, max_age=0).
        .start(&ctx.state.public_url, intent, intent == "reauth", ctx.now())
        .await
    {
        Ok((url, flow)) => with_cookie(see_other(&url), flow_cookie(&ctx, Some(&flow))),
        Err(error) => {
            tracing::warn!(provider = provider_id, %error, "external sign-in could not start");
            let mut flash = Flash::for_form("sign_in");
            flash.alert =
                Some(tr("external.unavailable").replace("%{provider}", &provider.config.label));
            ctx.back(
                if intent == "link" {
                    "/account"
                } else {
                    "/sign-in"
                },
                flash,
            )
            .await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CallbackQuery {
    code: String,
    state: String,
    error: String,
}

pub async fn callback(
    ctx: FormContext,
    Path(provider_id): Path<String>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Response {
    // The flow cookie works once: it is removed whatever happens.
    let removal = flow_cookie(&ctx, None);
    let response = callback_inner(&ctx, &provider_id, &query, &headers).await;
    with_cookie(response, removal)
}

async fn refuse(ctx: &FormContext, key: &str) -> Response {
    let mut flash = Flash::for_form("sign_in");
    flash.alert = Some(tr(key));
    let to = if ctx.auth().await.is_some() {
        "/account"
    } else {
        "/sign-in"
    };
    ctx.back(to, flash).await
}

async fn callback_inner(
    ctx: &FormContext,
    provider_id: &str,
    query: &CallbackQuery,
    headers: &HeaderMap,
) -> Response {
    let Some(provider) = ctx.state.providers.get(provider_id) else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    if !query.error.is_empty() {
        return refuse(ctx, "external.cancelled").await;
    }
    let Some(flow) = read_flow(ctx, headers) else {
        tracing::warn!(
            provider = provider_id,
            "external sign-in without a valid flow cookie"
        );
        return refuse(ctx, "external.failed").await;
    };
    let state_matches: bool =
        flow.provider == provider_id && subtle_eq(flow.state.as_bytes(), query.state.as_bytes());
    if !state_matches || query.code.is_empty() {
        tracing::warn!(
            provider = provider_id,
            "external sign-in with a foreign state"
        );
        return refuse(ctx, "external.failed").await;
    }
    match identities::first_use_of_state(
        &ctx.state.portal.db,
        &flow.state,
        flow.started_at + FLOW_LIFETIME_MS,
        ctx.now(),
    )
    .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(provider = provider_id, "external sign-in answer replayed");
            return refuse(ctx, "external.failed").await;
        }
        Err(error) => return failure(&error.to_string()),
    }
    let identity = match provider
        .finish(&ctx.state.public_url, &flow, &query.code)
        .await
    {
        Ok(identity) => identity,
        Err(error) => {
            tracing::warn!(provider = provider_id, %error, "external sign-in refused");
            return refuse(ctx, "external.failed").await;
        }
    };
    if flow.intent == "link" {
        return link_identity(ctx, identity).await;
    }
    if flow.intent == "reauth" {
        return confirm_identity(ctx, &flow, identity).await;
    }
    let portal = &ctx.state.portal;
    match identities::find_user(&portal.db, &identity.provider, &identity.subject).await {
        Ok(Some(user_id)) => sign_in_as(ctx, user_id, &identity.provider).await,
        Ok(None) => {
            let pending = PendingIdentity {
                identity,
                at: ctx.now(),
            };
            if let Err(error) = ctx.session.insert(PENDING_IDENTITY_KEY, pending).await {
                return failure(&error.to_string());
            }
            see_other("/sign-up/external")
        }
        Err(error) => failure(&error.to_string()),
    }
}

/// Constant-time comparison of the returned state with ours.
fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn sign_in_as(ctx: &FormContext, user_id: uuid::Uuid, provider: &str) -> Response {
    let portal = &ctx.state.portal;
    let account = match profile::load(&portal.db, user_id).await {
        Ok(Some(account)) => account,
        Ok(None) => return refuse(ctx, "external.failed").await,
        Err(error) => return failure(&error.to_string()),
    };
    // An address nobody has proven grants nothing: whoever signed up through the provider
    // with it gets in once a link sent to it has been followed. A fresh link goes out (at
    // most three an hour), so the owner of the address can finish signing up.
    if !account.email_verified() {
        tracing::info!(
            provider,
            "external sign-in refused: address not confirmed yet"
        );
        let _ = verification::resend(
            &portal.db,
            user_id,
            &portal.public_url,
            &*portal.clock,
            &*portal.random,
        )
        .await;
        return refuse(ctx, "external.confirm_first").await;
    }
    let recorded =
        signin::signed_in_externally(portal, &ctx.meta, user_id, account.customer_id, provider);
    if let Err(error) = recorded.await {
        return failure(&error.to_string());
    }
    if let Err(error) = ctx.session.cycle_id().await {
        return failure(&error.to_string());
    }
    let _ = ctx.session.remove_value(AUTH_KEY).await;
    let result = if account.two_factor_enabled() {
        let pending = PendingSecondFactor {
            user_id,
            started_at: ctx.now(),
        };
        ctx.session
            .insert(PENDING_SECOND_FACTOR_KEY, pending)
            .await
            .map(|_| "/sign-in/two-factor")
    } else {
        let auth = AuthState {
            user_id,
            signed_in_at: ctx.now(),
        };
        ctx.session.insert(AUTH_KEY, auth).await.map(|_| "/account")
    };
    match result {
        Ok(to) => see_other(to),
        Err(error) => failure(&error.to_string()),
    }
}

/// Re-authentication at the provider: the identity must be one of the signed-in account's.
async fn confirm_identity(
    ctx: &FormContext,
    flow: &FlowState,
    identity: ExternalIdentity,
) -> Response {
    let auth = match require_auth(ctx).await {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    let owner =
        identities::find_user(&ctx.state.portal.db, &identity.provider, &identity.subject).await;
    match owner {
        Ok(Some(owner)) if owner == auth.user_id && !flow.fresh_sign_in(&identity) => {
            // The provider let the person through without a new sign-in (or cannot say): a
            // browser left signed in at the provider is not proof. The email link is.
            tracing::info!(provider = %identity.provider, "re-authentication without a fresh sign-in");
            let name = ctx
                .state
                .providers
                .get(&identity.provider)
                .map(|p| p.config.label.clone())
                .unwrap_or_default();
            let mut flash = Flash::for_form("reauth");
            flash.alert = Some(tr("reauth.not_fresh").replace("%{provider}", &name));
            ctx.back("/account", flash).await
        }
        Ok(Some(owner)) if owner == auth.user_id => {
            if let Err(error) = ctx.session.insert(REAUTHENTICATED_AT_KEY, ctx.now()).await {
                return failure(&error.to_string());
            }
            ctx.back("/account", Flash::notice(tr("external.confirmed")))
                .await
        }
        Ok(_) => refuse(ctx, "external.not_yours").await,
        Err(error) => failure(&error.to_string()),
    }
}

async fn link_identity(ctx: &FormContext, identity: ExternalIdentity) -> Response {
    let auth = match require_auth(ctx).await {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    let _ = ctx.session.remove_value(LINK_REAUTH_KEY).await;
    let mut flash = Flash::for_form("identities");
    match identities::link(&ctx.state.portal, &ctx.meta, auth.user_id, &identity).await {
        Ok(Ok(())) => flash.notice = Some(tr("external.linked")),
        Ok(Err(LinkRefusal::UsedByAnother)) => flash.alert = Some(tr("external.used_by_another")),
        Err(error) => return failure(&error.to_string()),
    }
    ctx.back("/account", flash).await
}

/// The identity waiting for its sign-up form, if recent.
async fn pending_identity(session: &tower_sessions::Session, now: i64) -> Option<PendingIdentity> {
    session
        .get::<PendingIdentity>(PENDING_IDENTITY_KEY)
        .await
        .ok()
        .flatten()
        .filter(|p| p.is_fresh(now))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExternalSignUpFields {
    email: String,
    display_name: String,
    age: Option<String>,
    terms: Option<String>,
}

pub async fn sign_up(ctx: FormContext, Form(fields): Form<ExternalSignUpFields>) -> Response {
    let Some(pending) = pending_identity(&ctx.session, ctx.now()).await else {
        let mut flash = Flash::for_form("sign_in");
        flash.alert = Some(tr("external.expired"));
        return ctx.back("/sign-in", flash).await;
    };
    let mut flash = Flash::for_form("external_sign_up");
    flash.values.insert("email".into(), fields.email.clone());
    flash
        .values
        .insert("display_name".into(), fields.display_name.clone());
    for (name, checked) in [("age", &fields.age), ("terms", &fields.terms)] {
        if checked.is_some() {
            flash.values.insert(name.into(), "on".into());
        }
    }
    let name = fields.display_name.trim();
    if !email_is_valid(&fields.email) {
        flash
            .errors
            .insert("email".into(), tr("signup.email_invalid"));
    }
    if name.is_empty() {
        flash
            .errors
            .insert("display_name".into(), tr("signup.name_required"));
    } else if name.chars().count() > MAX_NAME_LENGTH || name.chars().any(char::is_control) {
        flash
            .errors
            .insert("display_name".into(), tr("signup.name_too_long"));
    }
    if fields.age.is_none() {
        flash.errors.insert("age".into(), tr("signup.age_required"));
    }
    if fields.terms.is_none() {
        flash
            .errors
            .insert("terms".into(), tr("signup.terms_required"));
    }
    if !flash.errors.is_empty() {
        return ctx.back("/sign-up/external", flash).await;
    }
    let signup = ExternalSignUp {
        identity: pending.identity.clone(),
        email: fields.email.trim().to_string(),
        display_name: name.to_string(),
    };
    match identities::sign_up(&ctx.state.portal, &ctx.meta, &signup).await {
        Ok(ExternalSignUpOutcome::Created { user_id, verified }) => {
            let _ = ctx.session.remove_value(PENDING_IDENTITY_KEY).await;
            if let Err(error) = ctx.session.cycle_id().await {
                return failure(&error.to_string());
            }
            let auth = AuthState {
                user_id,
                signed_in_at: ctx.now(),
            };
            if let Err(error) = ctx.session.insert(AUTH_KEY, auth).await {
                return failure(&error.to_string());
            }
            let notice = if verified {
                tr("external.welcome")
            } else {
                tr("signup.check_email").replace("%{email}", &signup.email)
            };
            ctx.back("/account", Flash::notice(notice)).await
        }
        Ok(ExternalSignUpOutcome::EmailTaken) => {
            flash.alert = Some(tr("external.email_taken"));
            ctx.back("/sign-up/external", flash).await
        }
        Ok(ExternalSignUpOutcome::IdentityTaken) => see_other("/sign-in"),
        Err(error) => failure(&error.to_string()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LinkFields {
    provider: String,
    answer: String,
}

/// Re-authenticates, then sends the browser to the provider to link an identity.
pub async fn link(ctx: FormContext, Form(fields): Form<LinkFields>) -> Response {
    let auth = match require_auth(&ctx).await {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    if ctx.state.providers.get(&fields.provider).is_none() {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    let mut flash = Flash::for_form(&format!("link_{}", fields.provider));
    match super::account::reauthenticate(&ctx, &auth, &fields.answer, &mut flash, "answer").await {
        Ok(true) => {}
        Ok(false) => return ctx.back("/account", flash).await,
        Err(response) => return response,
    }
    if let Err(error) = ctx.session.insert(LINK_REAUTH_KEY, ctx.now()).await {
        return failure(&error.to_string());
    }
    // A configured provider's id (checked above): the portal's own path.
    see_other(&format!("/auth/{}/start?intent=link", fields.provider))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UnlinkFields {
    provider: String,
    subject: String,
}

pub async fn unlink(ctx: FormContext, Form(fields): Form<UnlinkFields>) -> Response {
    let auth = match require_auth(&ctx).await {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    let mut flash = Flash::for_form("identities");
    match identities::unlink(
        &ctx.state.portal,
        &ctx.meta,
        auth.user_id,
        &fields.provider,
        &fields.subject,
    )
    .await
    {
        Ok(Ok(())) => flash.notice = Some(tr("external.unlinked")),
        Ok(Err(UnlinkRefusal::LastWayIn)) => flash.alert = Some(tr("external.last_way_in")),
        Ok(Err(UnlinkRefusal::NotFound)) => flash.alert = Some(tr("external.not_linked")),
        Err(error) => return failure(&error.to_string()),
    }
    ctx.back("/account", flash).await
}
