//! Sign-up, email verification, sign-in (with the second step when two-factor is on),
//! sign-out and password reset.

use super::{failure, local_path, see_other, tr, wait_message, FormContext};
use app::forms::Flash;
use axum::{extract::Path, response::Response, Form};
use domain::{
    accounts::{
        email_tokens::TokenError,
        reset::{self, ResetRefusal},
        signin::{self, SignInOutcome},
        signup::{self, Field, SignUpForm, SignUpOutcome},
        throttle, two_factor,
        verification::{self, ResendError},
    },
    sessions::{AuthState, PendingSecondFactor, AUTH_KEY, PENDING_SECOND_FACTOR_KEY},
};
use serde::Deserialize;
use uuid::Uuid;

/// The second step must follow the password within this time.
const SECOND_FACTOR_WINDOW_MS: i64 = 10 * 60 * 1000;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignUpFields {
    email: String,
    password: String,
    display_name: String,
    age: Option<String>,
    terms: Option<String>,
}

fn field_name(field: Field) -> &'static str {
    match field {
        Field::Email => "email",
        Field::Password => "password",
        Field::DisplayName => "display_name",
        Field::Age => "age",
        Field::Terms => "terms",
    }
}

pub async fn sign_up(ctx: FormContext, Form(fields): Form<SignUpFields>) -> Response {
    let mut flash = Flash::for_form("sign_up");
    flash.values.insert("email".into(), fields.email.clone());
    flash
        .values
        .insert("display_name".into(), fields.display_name.clone());
    if fields.age.is_some() {
        flash.values.insert("age".into(), "on".into());
    }
    if fields.terms.is_some() {
        flash.values.insert("terms".into(), "on".into());
    }
    if let Some(wait) = ctx.over_ip_limit() {
        flash.alert = Some(wait_message(wait));
        return ctx.back("/sign-up", flash).await;
    }
    let form = SignUpForm {
        email: fields.email,
        password: fields.password,
        display_name: fields.display_name,
        age_confirmed: fields.age.is_some(),
        terms_accepted: fields.terms.is_some(),
    };
    let valid = match signup::validate(&form) {
        Ok(valid) => valid,
        Err(problems) => {
            for problem in problems {
                flash
                    .errors
                    .insert(field_name(problem.field).into(), tr(&problem.message_key));
            }
            return ctx.back("/sign-up", flash).await;
        }
    };
    let portal = &ctx.state.portal;
    let outcome = signup::create_account(
        &portal.db,
        &portal.passwords,
        &portal.public_url,
        &*portal.clock,
        &*portal.random,
        &ctx.meta,
        &valid,
    )
    .await;
    match outcome {
        Ok(SignUpOutcome::Created { .. }) => {}
        Ok(SignUpOutcome::EmailTaken { user_id }) => {
            // Answer as for a new account, and tell the address's owner.
            if let Err(error) = signup::notify_address_taken(portal, &ctx.meta, user_id).await {
                return failure(&error.to_string());
            }
        }
        Err(error) => return failure(&error.to_string()),
    }
    let notice = tr("signup.check_email").replace("%{email}", &valid.email);
    ctx.back("/sign-in", Flash::notice(notice)).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignInFields {
    email: String,
    password: String,
    next: String,
}

pub async fn sign_in(ctx: FormContext, Form(fields): Form<SignInFields>) -> Response {
    let mut flash = Flash::for_form("sign_in");
    flash.values.insert("email".into(), fields.email.clone());
    if let Some(wait) = ctx.over_ip_limit() {
        flash.alert = Some(wait_message(wait));
        return ctx.back("/sign-in", flash).await;
    }
    if fields.email.trim().is_empty() || fields.password.is_empty() {
        flash.alert = Some(tr("signin.missing"));
        return ctx.back("/sign-in", flash).await;
    }
    let portal = &ctx.state.portal;
    let outcome = signin::sign_in(
        &portal.db,
        &portal.passwords,
        &*portal.clock,
        &*portal.random,
        &ctx.meta,
        &fields.email,
        &fields.password,
    )
    .await;
    match outcome {
        Ok(SignInOutcome::SignedIn {
            user_id,
            needs_second_factor,
            ..
        }) => {
            // A new session id at every sign-in (no session fixation).
            if let Err(error) = ctx.session.cycle_id().await {
                return failure(&error.to_string());
            }
            let _ = ctx.session.remove_value(AUTH_KEY).await;
            if needs_second_factor {
                let pending = PendingSecondFactor {
                    user_id,
                    started_at: ctx.now(),
                };
                if let Err(error) = ctx.session.insert(PENDING_SECOND_FACTOR_KEY, pending).await {
                    return failure(&error.to_string());
                }
                return see_other("/sign-in/two-factor");
            }
            complete_sign_in(&ctx, user_id, local_path(&fields.next)).await
        }
        Ok(SignInOutcome::Refused) => {
            flash.alert = Some(tr("signin.refused"));
            ctx.back("/sign-in", flash).await
        }
        Ok(SignInOutcome::Throttled(wait)) => {
            flash.alert = Some(wait_message(wait));
            ctx.back("/sign-in", flash).await
        }
        Err(error) => failure(&error.to_string()),
    }
}

async fn complete_sign_in(ctx: &FormContext, user_id: Uuid, to: &str) -> Response {
    let auth = AuthState {
        user_id,
        signed_in_at: ctx.now(),
    };
    let _ = ctx.session.remove_value(PENDING_SECOND_FACTOR_KEY).await;
    if let Err(error) = ctx.session.insert(AUTH_KEY, auth).await {
        return failure(&error.to_string());
    }
    see_other(to)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SecondFactorFields {
    code: String,
}

pub async fn second_factor(ctx: FormContext, Form(fields): Form<SecondFactorFields>) -> Response {
    let pending = ctx
        .session
        .get::<PendingSecondFactor>(PENDING_SECOND_FACTOR_KEY)
        .await
        .ok()
        .flatten()
        .filter(|p| ctx.now() - p.started_at < SECOND_FACTOR_WINDOW_MS);
    let Some(pending) = pending else {
        let mut flash = Flash::for_form("sign_in");
        flash.alert = Some(tr("signin.second_factor_expired"));
        return ctx.back("/sign-in", flash).await;
    };
    let mut flash = Flash::for_form("second_factor");
    if let Some(wait) = ctx.over_ip_limit() {
        flash.alert = Some(wait_message(wait));
        return ctx.back("/sign-in/two-factor", flash).await;
    }
    let portal = &ctx.state.portal;
    let user_id = pending.user_id;
    match throttle::account_may_try(&portal.db, user_id, &*portal.clock).await {
        Ok(Ok(())) => {}
        Ok(Err(wait)) => {
            flash.alert = Some(wait_message(wait));
            return ctx.back("/sign-in/two-factor", flash).await;
        }
        Err(error) => return failure(&error.to_string()),
    }
    let right = match two_factor::check_code(portal, user_id, &fields.code).await {
        Ok(right) => right,
        Err(error) => return failure(&error.to_string()),
    };
    if let Err(error) = signin::second_factor_checked(portal, &ctx.meta, user_id, right).await {
        return failure(&error.to_string());
    }
    if !right {
        flash
            .errors
            .insert("code".into(), tr("two_factor.wrong_code"));
        return ctx.back("/sign-in/two-factor", flash).await;
    }
    if let Err(error) = ctx.session.cycle_id().await {
        return failure(&error.to_string());
    }
    complete_sign_in(&ctx, user_id, "/account").await
}

pub async fn sign_out(ctx: FormContext) -> Response {
    if let (Some(auth), Some(id)) = (ctx.auth().await, ctx.session.id()) {
        let key = domain::sessions::storage_key(&id.to_string());
        let portal = &ctx.state.portal;
        if let Err(error) = domain::sessions::sign_out(portal, &ctx.meta, auth.user_id, &key).await
        {
            return failure(&error.to_string());
        }
    }
    // Deletes the session row: the cookie is worthless from now on, wherever a copy of it is.
    if let Err(error) = ctx.session.flush().await {
        return failure(&error.to_string());
    }
    see_other("/")
}

pub async fn verify_email(ctx: FormContext, Path(token): Path<String>) -> Response {
    let portal = &ctx.state.portal;
    let signed_in = ctx.auth().await.is_some();
    let to = if signed_in { "/account" } else { "/sign-in" };
    match verification::verify(
        &portal.db,
        &token,
        &portal.public_url,
        &ctx.meta,
        &*portal.clock,
        &*portal.random,
    )
    .await
    {
        Ok(Ok(_)) => ctx.back(to, Flash::notice(tr("verify.done"))).await,
        Ok(Err(problem)) => {
            let mut flash = Flash::for_form(if signed_in { "account" } else { "sign_in" });
            flash.alert = Some(tr(match problem {
                TokenError::Expired => "verify.expired",
                TokenError::Invalid => "verify.invalid",
            }));
            ctx.back(to, flash).await
        }
        Err(error) => failure(&error.to_string()),
    }
}

pub async fn resend_verification(ctx: FormContext) -> Response {
    let auth = match super::require_auth(&ctx).await {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    let portal = &ctx.state.portal;
    let result = verification::resend(
        &portal.db,
        auth.user_id,
        &portal.public_url,
        &*portal.clock,
        &*portal.random,
    )
    .await;
    let mut flash = Flash::for_form("account");
    match result {
        Ok(Ok(())) => flash.notice = Some(tr("verify.resent")),
        Ok(Err(ResendError::AlreadyVerified)) => flash.notice = Some(tr("verify.done")),
        Ok(Err(ResendError::TooManyRequests)) => flash.alert = Some(tr("verify.resend_limit")),
        Err(error) => return failure(&error.to_string()),
    }
    ctx.back("/account", flash).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ForgotFields {
    email: String,
}

pub async fn forgot_password(ctx: FormContext, Form(fields): Form<ForgotFields>) -> Response {
    let mut flash = Flash::for_form("forgot");
    flash.values.insert("email".into(), fields.email.clone());
    if let Some(wait) = ctx.over_ip_limit() {
        flash.alert = Some(wait_message(wait));
        return ctx.back("/forgot-password", flash).await;
    }
    let email = fields.email.trim();
    if !signup::email_is_valid(email) {
        flash
            .errors
            .insert("email".into(), tr("signup.email_invalid"));
        return ctx.back("/forgot-password", flash).await;
    }
    if let Err(error) = reset::request(&ctx.state.portal, &ctx.meta, email).await {
        return failure(&error.to_string());
    }
    // The same answer whether or not the address has an account.
    flash.notice = Some(tr("reset.sent").replace("%{email}", email));
    ctx.back("/forgot-password", flash).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResetFields {
    password: String,
}

pub async fn reset_password(
    ctx: FormContext,
    Path(token): Path<String>,
    Form(fields): Form<ResetFields>,
) -> Response {
    let here = format!("/reset-password/{token}");
    let mut flash = Flash::for_form("reset");
    if let Some(wait) = ctx.over_ip_limit() {
        flash.alert = Some(wait_message(wait));
        return ctx.back(&here, flash).await;
    }
    match reset::complete(&ctx.state.portal, &ctx.meta, &token, &fields.password).await {
        Ok(Ok(_)) => {
            // Every session of the account has ended, this one included: start afresh.
            let _ = ctx.session.remove_value(AUTH_KEY).await;
            if let Err(error) = ctx.session.cycle_id().await {
                return failure(&error.to_string());
            }
            ctx.back("/sign-in", Flash::notice(tr("reset.done"))).await
        }
        Ok(Err(ResetRefusal::Password(problem))) => {
            flash
                .errors
                .insert("password".into(), tr(problem.message_key()));
            ctx.back(&here, flash).await
        }
        Ok(Err(ResetRefusal::Link(problem))) => {
            flash.alert = Some(tr(match problem {
                TokenError::Expired => "reset.link_expired",
                TokenError::Invalid => "reset.link_invalid",
            }));
            ctx.back("/forgot-password", flash).await
        }
        Err(error) => failure(&error.to_string()),
    }
}
