//! The account page's forms: name, password, sessions, two-factor authentication. Sensitive
//! changes re-authenticate first ([`domain::accounts::reauth`]).

use super::{failure, require_auth, tr, wait_message, FormContext};
use app::forms::Flash;
use axum::{extract::Path, response::Response, Form};
use domain::{
    accounts::{
        email_change::{self, ConfirmRefusal},
        email_tokens::TokenError,
        profile,
        reauth::{self, ReauthRefusal},
        two_factor::{self, TwoFactorError},
    },
    sessions::{self, AuthState},
};
use serde::Deserialize;

/// The signed-in account, or the response sending the visitor to sign in.
macro_rules! signed_in {
    ($ctx:expr) => {
        match require_auth(&$ctx).await {
            Ok(auth) => auth,
            Err(response) => return response,
        }
    };
}

/// The stored key of this request's session (the id in the cookie is never stored).
async fn current_key(ctx: &FormContext) -> Option<String> {
    ctx.session
        .id()
        .map(|id| sessions::storage_key(&id.to_string()))
}

/// Re-authenticates with `answer`; on refusal, the flash says why under `field`. Accounts that
/// sign in only through a provider confirm at the provider first (see
/// `external::REAUTHENTICATED_AT_KEY`), which counts for a few minutes.
pub(super) async fn reauthenticate(
    ctx: &FormContext,
    auth: &AuthState,
    answer: &str,
    flash: &mut Flash,
    field: &str,
) -> Result<bool, Response> {
    match reauth::confirm(&ctx.state.portal, &ctx.meta, auth.user_id, answer).await {
        Ok(Err(ReauthRefusal::NeedsProvider))
            if super::external::recently_confirmed_at_provider(ctx).await =>
        {
            Ok(true)
        }
        Ok(Ok(())) => Ok(true),
        Ok(Err(ReauthRefusal::Wrong)) => {
            flash.errors.insert(field.into(), tr("reauth.wrong"));
            Ok(false)
        }
        Ok(Err(ReauthRefusal::Throttled(wait))) => {
            flash.alert = Some(wait_message(wait));
            Ok(false)
        }
        Ok(Err(ReauthRefusal::NeedsProvider)) => {
            flash.alert = Some(tr("reauth.needs_provider"));
            Ok(false)
        }
        Err(error) => Err(failure(&error.to_string())),
    }
}

/// "Email me a confirmation link": for accounts whose provider cannot prove a fresh sign-in.
pub async fn send_reauth_link(ctx: FormContext) -> Response {
    let auth = signed_in!(ctx);
    let mut flash = Flash::for_form("reauth");
    match reauth::send_link(&ctx.state.portal, &ctx.meta, auth.user_id).await {
        Ok(Ok(email)) => flash.notice = Some(tr("reauth.link_sent").replace("%{email}", &email)),
        Ok(Err(reauth::LinkRefusal::Unverified)) => {
            flash.alert = Some(tr("reauth.link_unverified"))
        }
        Ok(Err(reauth::LinkRefusal::TooManyRequests)) => {
            flash.alert = Some(tr("reauth.link_limit"))
        }
        Err(error) => return failure(&error.to_string()),
    }
    ctx.back("/account", flash).await
}

/// The POST of the page a re-authentication link opens: in the browser signed in to the account
/// the link was sent for, sensitive changes are allowed for a few minutes.
pub async fn confirm_reauth_link(ctx: FormContext, Path(token): Path<String>) -> Response {
    let auth = signed_in!(ctx);
    match reauth::confirm_link(&ctx.state.portal, &ctx.meta, auth.user_id, &token).await {
        Ok(Ok(())) => {
            if let Err(error) = ctx
                .session
                .insert(super::external::REAUTHENTICATED_AT_KEY, ctx.now())
                .await
            {
                return failure(&error.to_string());
            }
            ctx.back("/account", Flash::notice(tr("external.confirmed")))
                .await
        }
        Ok(Err(_)) => {
            let mut flash = Flash::for_form("reauth");
            flash.alert = Some(tr("reauth.link_invalid"));
            ctx.back("/account", flash).await
        }
        Err(error) => failure(&error.to_string()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NameFields {
    display_name: String,
}

pub async fn rename(ctx: FormContext, Form(fields): Form<NameFields>) -> Response {
    let auth = signed_in!(ctx);
    let mut flash = Flash::for_form("name");
    match profile::rename(
        &ctx.state.portal,
        &ctx.meta,
        auth.user_id,
        &fields.display_name,
    )
    .await
    {
        Ok(Ok(())) => flash.notice = Some(tr("account.name_saved")),
        Ok(Err(key)) => {
            flash
                .values
                .insert("display_name".into(), fields.display_name);
            flash.errors.insert("display_name".into(), tr(key));
        }
        Err(error) => return failure(&error.to_string()),
    }
    ctx.back("/account", flash).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordFields {
    current: String,
    new_password: String,
}

pub async fn change_password(ctx: FormContext, Form(fields): Form<PasswordFields>) -> Response {
    let auth = signed_in!(ctx);
    let mut flash = Flash::for_form("password");
    match reauthenticate(&ctx, &auth, &fields.current, &mut flash, "current").await {
        Ok(true) => {}
        Ok(false) => return ctx.back("/account", flash).await,
        Err(response) => return response,
    }
    let keep = current_key(&ctx).await;
    match profile::set_password(
        &ctx.state.portal,
        &ctx.meta,
        auth.user_id,
        &fields.new_password,
        keep.as_deref(),
        "password.changed",
    )
    .await
    {
        Ok(Ok(())) => {
            // A privilege change: a new session id, as at sign-in.
            if let Err(error) = ctx.session.cycle_id().await {
                return failure(&error.to_string());
            }
            flash.notice = Some(tr("account.password_saved"));
        }
        Ok(Err(problem)) => {
            flash
                .errors
                .insert("new_password".into(), tr(problem.message_key()));
        }
        Err(error) => return failure(&error.to_string()),
    }
    ctx.back("/account", flash).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RevokeFields {
    id: String,
}

pub async fn revoke_session(ctx: FormContext, Form(fields): Form<RevokeFields>) -> Response {
    let auth = signed_in!(ctx);
    let mut flash = Flash::for_form("sessions");
    // Scoped by account: another account's session id ends nothing.
    let portal = &ctx.state.portal;
    match sessions::end_one(portal, &ctx.meta, auth.user_id, &fields.id).await {
        Ok(true) => {
            if current_key(&ctx).await.as_deref() == Some(fields.id.as_str()) {
                let _ = ctx.session.flush().await;
                return super::see_other("/");
            }
            flash.notice = Some(tr("account.session_revoked"));
        }
        Ok(false) => flash.alert = Some(tr("account.session_unknown")),
        Err(error) => return failure(&error.to_string()),
    }
    ctx.back("/account", flash).await
}

pub async fn revoke_other_sessions(ctx: FormContext) -> Response {
    let auth = signed_in!(ctx);
    let mut flash = Flash::for_form("sessions");
    let Some(keep) = current_key(&ctx).await else {
        return super::see_other("/sign-in");
    };
    let portal = &ctx.state.portal;
    match sessions::end_others(portal, &ctx.meta, auth.user_id, &keep).await {
        Ok(count) => {
            flash.notice =
                Some(tr("account.sessions_revoked").replace("%{count}", &count.to_string()));
        }
        Err(error) => return failure(&error.to_string()),
    }
    ctx.back("/account", flash).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeFields {
    code: String,
}

/// "Start setting up": a new two-factor secret waits for its first code.
pub async fn start_two_factor(ctx: FormContext) -> Response {
    let auth = signed_in!(ctx);
    match two_factor::start_enrolment(&ctx.state.portal, auth.user_id).await {
        Ok(_) => super::see_other("/account/two-factor"),
        Err(error) => failure(&error.to_string()),
    }
}

pub async fn confirm_two_factor(ctx: FormContext, Form(fields): Form<CodeFields>) -> Response {
    let auth = signed_in!(ctx);
    let mut flash = Flash::for_form("two_factor");
    match two_factor::confirm(&ctx.state.portal, &ctx.meta, auth.user_id, &fields.code).await {
        Ok(Ok(codes)) => {
            if let Err(error) = ctx.session.cycle_id().await {
                return failure(&error.to_string());
            }
            flash.notice = Some(tr("two_factor.enabled"));
            flash.recovery_codes = codes;
        }
        Ok(Err(TwoFactorError::WrongCode)) => {
            flash
                .errors
                .insert("code".into(), tr("two_factor.wrong_code"));
        }
        Ok(Err(TwoFactorError::NotStarted | TwoFactorError::AlreadyEnabled)) => {}
        Err(error) => return failure(&error.to_string()),
    }
    ctx.back("/account/two-factor", flash).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReauthFields {
    answer: String,
}

pub async fn disable_two_factor(ctx: FormContext, Form(fields): Form<ReauthFields>) -> Response {
    let auth = signed_in!(ctx);
    let mut flash = Flash::for_form("two_factor_disable");
    match reauthenticate(&ctx, &auth, &fields.answer, &mut flash, "answer").await {
        Ok(true) => {}
        Ok(false) => return ctx.back("/account/two-factor", flash).await,
        Err(response) => return response,
    }
    if let Err(error) = two_factor::disable(&ctx.state.portal, &ctx.meta, auth.user_id).await {
        return failure(&error.to_string());
    }
    if let Err(error) = ctx.session.cycle_id().await {
        return failure(&error.to_string());
    }
    flash.notice = Some(tr("two_factor.disabled"));
    ctx.back("/account", flash).await
}

pub async fn new_recovery_codes(ctx: FormContext, Form(fields): Form<ReauthFields>) -> Response {
    let auth = signed_in!(ctx);
    let mut flash = Flash::for_form("recovery_codes");
    match reauthenticate(&ctx, &auth, &fields.answer, &mut flash, "answer").await {
        Ok(true) => {}
        Ok(false) => return ctx.back("/account/two-factor", flash).await,
        Err(response) => return response,
    }
    match two_factor::regenerate_recovery_codes(&ctx.state.portal, &ctx.meta, auth.user_id).await {
        Ok(codes) => {
            flash.notice = Some(tr("two_factor.codes_replaced"));
            flash.recovery_codes = codes;
        }
        Err(error) => return failure(&error.to_string()),
    }
    ctx.back("/account/two-factor", flash).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EmailFields {
    new_email: String,
    answer: String,
}

pub async fn change_email(ctx: FormContext, Form(fields): Form<EmailFields>) -> Response {
    let auth = signed_in!(ctx);
    let mut flash = Flash::for_form("email");
    flash
        .values
        .insert("new_email".into(), fields.new_email.clone());
    match reauthenticate(&ctx, &auth, &fields.answer, &mut flash, "answer").await {
        Ok(true) => {}
        Ok(false) => return ctx.back("/account", flash).await,
        Err(response) => return response,
    }
    match email_change::request(
        &ctx.state.portal,
        &ctx.meta,
        auth.user_id,
        &fields.new_email,
    )
    .await
    {
        Ok(Ok(())) => {
            flash.values.clear();
            flash.notice =
                Some(tr("email_change.sent").replace("%{email}", fields.new_email.trim()));
        }
        Ok(Err(refusal)) => {
            flash
                .errors
                .insert("new_email".into(), tr(refusal.message_key()));
        }
        Err(error) => return failure(&error.to_string()),
    }
    ctx.back("/account", flash).await
}

pub async fn confirm_email(ctx: FormContext, Path(token): Path<String>) -> Response {
    let to = if ctx.auth().await.is_some() {
        "/account"
    } else {
        "/sign-in"
    };
    let mut flash = Flash::for_form(if to == "/account" {
        "account"
    } else {
        "sign_in"
    });
    match email_change::confirm(&ctx.state.portal, &ctx.meta, &token).await {
        Ok(Ok(_)) => flash.notice = Some(tr("email_change.done")),
        Ok(Err(refusal)) => {
            flash.alert = Some(tr(match refusal {
                ConfirmRefusal::Taken => "email_change.taken",
                ConfirmRefusal::Link(TokenError::Expired) => "email_change.expired",
                ConfirmRefusal::Link(TokenError::Invalid) => "email_change.invalid",
            }))
        }
        Err(error) => return failure(&error.to_string()),
    }
    ctx.back(to, flash).await
}
