//! The homeserver's own actions. "Show the password once": the first admin's generated
//! password is shown in the answer to the POST and erased from the portal in the same step.
//! Settings, registration tokens and users: changed through the homeserver's admin API, with
//! generated passwords shown once in the answer to the POST and never kept.

use super::{failure, shown_once, signed_in_customer, tr, FormContext};
use crate::http::plain_page::escape;
use app::forms::Flash;
use axum::{
    extract::Path,
    http::StatusCode,
    response::{IntoResponse, Response},
    Form,
};
use domain::{
    accounts::profile::MemberRole,
    audit::Actor,
    billing::subscriptions,
    homeservers::{
        lifecycle,
        manage::{self, Admin, ManageError},
        settings::{self, Choice, Registration, SettingsError},
        synapse::SynapseError,
    },
};
use serde::Deserialize;
use uuid::Uuid;

/// The password, for the customer's owner (technical members come with the users work).
pub async fn reveal_password(ctx: FormContext, Path(id): Path<String>) -> Response {
    let (account, customer_id) = match signed_in_customer(&ctx).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    if account.role != Some(MemberRole::Owner) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let portal = &ctx.state.portal;
    let sub = match subscriptions::get(&portal.db, customer_id, id).await {
        Ok(Some(sub)) => sub,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(error) => return failure(&error.to_string()),
    };
    let back = format!("/homeservers/{id}");
    let revealed = match lifecycle::reveal_admin_password(
        portal,
        &ctx.meta,
        Actor::User(account.user_id),
        customer_id,
        sub.homeserver_id,
    )
    .await
    {
        Ok(revealed) => revealed,
        Err(error) => return failure(&error.to_string()),
    };
    let back_link = format!(
        "<p><a class=\"button\" href=\"{back}\">{}</a></p>",
        escape(&tr("homeserver.back"))
    );
    let main = match revealed {
        Some((user, password)) => format!(
            "<h1>{title}</h1><p>{note}</p><dl class=\"facts\">\
             <dt>{user_label}</dt><dd><code class=\"admin-user\">{user}</code></dd>\
             <dt>{password_label}</dt><dd><input class=\"admin-password\" type=\"text\" readonly \
             aria-label=\"{password_label}\" value=\"{password}\"></dd></dl>{back_link}",
            title = escape(&tr("homeserver.revealed_title")),
            note = escape(&tr("homeserver.revealed_note")),
            user_label = escape(&tr("homeserver.user_label")),
            password_label = escape(&tr("homeserver.password_label")),
            user = escape(&format!(
                "@{user}:{}",
                portal.hosting.server_name(&sub.server_name, &sub.region)
            )),
            password = escape(&password),
        ),
        None => format!(
            "<h1>{title}</h1><p class=\"alert\" role=\"alert\">{text}</p>{back_link}",
            title = escape(&tr("homeserver.password_title")),
            text = escape(&tr("homeserver.already_revealed")),
        ),
    };
    shown_once(&tr("homeserver.revealed_title"), &main)
}

/// A signed-in owner or technical member, and the homeserver of subscription `id` among the
/// customer's: (user, customer, homeserver). Anything else is a 404.
async fn manager(ctx: &FormContext, id: &str) -> Result<(Uuid, Uuid, Uuid), Response> {
    let (account, customer_id) = signed_in_customer(ctx).await?;
    if !account.role.is_some_and(MemberRole::manages_homeservers) {
        return Err(StatusCode::NOT_FOUND.into_response());
    }
    let id = Uuid::parse_str(id).map_err(|_| StatusCode::NOT_FOUND.into_response())?;
    match subscriptions::get(&ctx.state.portal.db, customer_id, id).await {
        Ok(Some(sub)) => Ok((account.user_id, customer_id, sub.homeserver_id)),
        Ok(None) => Err(StatusCode::NOT_FOUND.into_response()),
        Err(error) => Err(failure(&error.to_string())),
    }
}

/// The admin API of the homeserver, or the answer that says why it cannot be reached.
async fn admin_access(
    ctx: &FormContext,
    customer_id: Uuid,
    homeserver_id: Uuid,
    back: &str,
    form: &str,
) -> Result<Admin, Response> {
    match manage::access(&ctx.state.portal, customer_id, homeserver_id).await {
        Ok(admin) => Ok(admin),
        Err(error) => Err(refused(ctx, back, form, error).await),
    }
}

/// [`manager`] and [`admin_access`] in one: the signed-in user and the homeserver's admin API.
async fn managed(
    ctx: &FormContext,
    id: &str,
    back: &str,
    form: &str,
) -> Result<(Uuid, Admin), Response> {
    let (user, customer_id, homeserver_id) = manager(ctx, id).await?;
    let admin = admin_access(ctx, customer_id, homeserver_id, back, form).await?;
    Ok((user, admin))
}

/// The answer to a refused or failed change: a message on the page for what the person can
/// act on, the error page for the rest.
async fn refused(ctx: &FormContext, back: &str, form: &str, error: ManageError) -> Response {
    let mut flash = Flash::for_form(form);
    match error {
        ManageError::NotFound => return StatusCode::NOT_FOUND.into_response(),
        ManageError::NotRunning => flash.alert = Some(tr("manage_host.not_running")),
        ManageError::Invalid(key) => flash.alert = Some(tr(key)),
        ManageError::Synapse(SynapseError::Unreachable(why)) => {
            tracing::warn!(%why, "a homeserver's admin API did not answer");
            flash.alert = Some(tr("manage_host.unreachable"));
        }
        ManageError::Synapse(error) => {
            tracing::warn!(%error, "a homeserver's admin API refused a change");
            flash.alert = Some(tr("manage_host.refused"));
        }
        ManageError::Db(error) => return failure(&error.to_string()),
        ManageError::Secret(error) => return failure(&error),
    }
    ctx.back(back, flash).await
}

#[derive(Deserialize)]
pub struct SettingsFields {
    #[serde(default)]
    registration: String,
    /// Checkboxes: present when ticked.
    federation: Option<String>,
    guest_access: Option<String>,
}

/// "Save settings": kept, then applied by the supervisor (a restart where they changed).
pub async fn save_settings(
    ctx: FormContext,
    Path(id): Path<String>,
    Form(fields): Form<SettingsFields>,
) -> Response {
    let (user, customer_id, homeserver_id) = match manager(&ctx, &id).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let back = format!("/homeservers/{id}/settings");
    let Ok(registration) = fields.registration.parse::<Registration>() else {
        let mut flash = Flash::for_form("settings");
        flash.errors.insert(
            "registration".into(),
            tr("host_settings.registration_missing"),
        );
        return ctx.back(&back, flash).await;
    };
    let choice = Choice {
        registration,
        federation: fields.federation.is_some(),
        guest_access: fields.guest_access.is_some(),
    };
    let saved = settings::save(
        &ctx.state.portal,
        &ctx.meta,
        Actor::User(user),
        customer_id,
        homeserver_id,
        choice,
    )
    .await;
    match saved {
        Ok(true) => {
            ctx.back(&back, Flash::notice(tr("host_settings.saved")))
                .await
        }
        Ok(false) => {
            ctx.back(&back, Flash::notice(tr("host_settings.unchanged")))
                .await
        }
        Err(SettingsError::Ended) => {
            let mut flash = Flash::for_form("settings");
            flash.alert = Some(tr("host_settings.ended"));
            ctx.back(&back, flash).await
        }
        Err(SettingsError::Db(error)) => failure(&error.to_string()),
    }
}

#[derive(Deserialize)]
pub struct TokenFields {
    #[serde(default)]
    uses: String,
    /// `YYYY-MM-DD` (a date input), or empty.
    #[serde(default)]
    valid_until: String,
}

/// The end of `date` (UTC), in ms since the epoch.
fn end_of_day(date: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(date, &format).ok()?;
    let next = date.next_day()?.midnight().assume_utc();
    Some((next.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// "Create a token".
pub async fn create_token(
    ctx: FormContext,
    Path(id): Path<String>,
    Form(fields): Form<TokenFields>,
) -> Response {
    let (user, customer_id, homeserver_id) = match manager(&ctx, &id).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let back = format!("/homeservers/{id}/settings");
    let mut flash = Flash::for_form("token");
    flash.values.insert("uses".into(), fields.uses.clone());
    flash
        .values
        .insert("valid_until".into(), fields.valid_until.clone());
    let uses = match fields.uses.trim() {
        "" => None,
        text => match text.parse::<u32>() {
            Ok(n) if (1..=manage::MAX_TOKEN_USES).contains(&n) => Some(n),
            _ => {
                flash
                    .errors
                    .insert("uses".into(), tr("tokens.uses_invalid"));
                None
            }
        },
    };
    let expires_at = match fields.valid_until.trim() {
        "" => None,
        text => match end_of_day(text) {
            Some(at) if at > manage::wall_clock_ms() => Some(at),
            Some(_) => {
                flash
                    .errors
                    .insert("valid_until".into(), tr("tokens.expiry_past"));
                None
            }
            None => {
                flash
                    .errors
                    .insert("valid_until".into(), tr("tokens.expiry_invalid"));
                None
            }
        },
    };
    if !flash.errors.is_empty() {
        return ctx.back(&back, flash).await;
    }
    let admin = match admin_access(&ctx, customer_id, homeserver_id, &back, "token").await {
        Ok(admin) => admin,
        Err(response) => return response,
    };
    let portal = &ctx.state.portal;
    match manage::create_token(
        portal,
        &ctx.meta,
        Actor::User(user),
        &admin,
        uses,
        expires_at,
    )
    .await
    {
        Ok(token) => {
            let notice = tr("tokens.created").replace("%{token}", &token.token);
            ctx.back(&back, Flash::notice(notice)).await
        }
        Err(error) => refused(&ctx, &back, "token", error).await,
    }
}

#[derive(Deserialize)]
pub struct TokenDeleteFields {
    #[serde(default)]
    token: String,
}

/// "Delete" a registration token.
pub async fn delete_token(
    ctx: FormContext,
    Path(id): Path<String>,
    Form(fields): Form<TokenDeleteFields>,
) -> Response {
    let back = format!("/homeservers/{id}/settings");
    let (user, admin) = match managed(&ctx, &id, &back, "tokens").await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let portal = &ctx.state.portal;
    match manage::delete_token(portal, &ctx.meta, Actor::User(user), &admin, &fields.token).await {
        Ok(()) => ctx.back(&back, Flash::notice(tr("tokens.deleted"))).await,
        Err(error) => refused(&ctx, &back, "tokens", error).await,
    }
}

#[derive(Deserialize)]
pub struct AddUserFields {
    #[serde(default)]
    name: String,
    admin: Option<String>,
}

/// The page that shows a user's generated password once.
fn password_page(id: &str, title_key: &str, user_id: &str, password: &str) -> Response {
    let main = format!(
        "<h1>{title}</h1><p>{note}</p><dl class=\"facts\">\
         <dt>{user_label}</dt><dd><code class=\"user-id\">{user}</code></dd>\
         <dt>{password_label}</dt><dd><input class=\"user-password\" type=\"text\" readonly \
         aria-label=\"{password_label}\" value=\"{password}\"></dd></dl>\
         <p><a class=\"button\" href=\"/homeservers/{id}/users\">{back}</a></p>",
        title = escape(&tr(title_key)),
        note = escape(&tr("users.password_once")),
        user_label = escape(&tr("homeserver.user_label")),
        password_label = escape(&tr("homeserver.password_label")),
        user = escape(user_id),
        password = escape(password),
        id = escape(id),
        back = escape(&tr("users.back")),
    );
    shown_once(&tr(title_key), &main)
}

/// "Add the user": the generated password is shown once.
pub async fn add_user(
    ctx: FormContext,
    Path(id): Path<String>,
    Form(fields): Form<AddUserFields>,
) -> Response {
    let (user, customer_id, homeserver_id) = match manager(&ctx, &id).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let back = format!("/homeservers/{id}/users");
    let name = fields.name.trim().trim_start_matches('@').to_string();
    if let Err(key) = manage::valid_localpart(&name) {
        let mut flash = Flash::for_form("add-user");
        flash.values.insert("name".into(), fields.name.clone());
        flash.errors.insert("name".into(), tr(key));
        return ctx.back(&back, flash).await;
    }
    let admin = match admin_access(&ctx, customer_id, homeserver_id, &back, "add-user").await {
        Ok(admin) => admin,
        Err(response) => return response,
    };
    let portal = &ctx.state.portal;
    let is_admin = fields.admin.is_some();
    match manage::add_user(
        portal,
        &ctx.meta,
        Actor::User(user),
        &admin,
        &name,
        is_admin,
    )
    .await
    {
        Ok((user_id, password)) => password_page(&id, "users.added_title", &user_id, &password),
        Err(ManageError::Invalid(key)) => {
            let mut flash = Flash::for_form("add-user");
            flash.values.insert("name".into(), fields.name.clone());
            flash.errors.insert("name".into(), tr(key));
            ctx.back(&back, flash).await
        }
        Err(error) => refused(&ctx, &back, "add-user", error).await,
    }
}

#[derive(Deserialize)]
pub struct UserFields {
    #[serde(default)]
    user: String,
    confirm: Option<String>,
}

/// "Reset the password": a new one is shown once and the user's devices are signed out.
pub async fn reset_user_password(
    ctx: FormContext,
    Path(id): Path<String>,
    Form(fields): Form<UserFields>,
) -> Response {
    let back = format!("/homeservers/{id}/users");
    let (user, admin) = match managed(&ctx, &id, &back, "users").await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let portal = &ctx.state.portal;
    match manage::reset_password(portal, &ctx.meta, Actor::User(user), &admin, &fields.user).await {
        Ok(password) => password_page(&id, "users.reset_title", &fields.user, &password),
        Err(error) => refused(&ctx, &back, "users", error).await,
    }
}

/// "Deactivate" (with its confirmation box ticked).
pub async fn deactivate_user(
    ctx: FormContext,
    Path(id): Path<String>,
    Form(fields): Form<UserFields>,
) -> Response {
    let back = format!("/homeservers/{id}/users");
    let (user, admin) = match managed(&ctx, &id, &back, "users").await {
        Ok(v) => v,
        Err(response) => return response,
    };
    if fields.confirm.is_none() {
        let mut flash = Flash::for_form("users");
        flash.alert = Some(tr("users.confirm_missing"));
        return ctx.back(&back, flash).await;
    }
    let portal = &ctx.state.portal;
    match manage::deactivate(portal, &ctx.meta, Actor::User(user), &admin, &fields.user).await {
        Ok(()) => {
            let notice = tr("users.deactivated_notice").replace("%{user}", &fields.user);
            ctx.back(&back, Flash::notice(notice)).await
        }
        Err(error) => refused(&ctx, &back, "users", error).await,
    }
}

#[derive(Deserialize)]
pub struct RestoreFields {
    #[serde(default)]
    backup: String,
    confirm: Option<String>,
}

/// "Restore" a backup (with its confirmation box ticked): the supervisor carries it out.
pub async fn restore_backup(
    ctx: FormContext,
    Path(id): Path<String>,
    Form(fields): Form<RestoreFields>,
) -> Response {
    let (user, customer_id, homeserver_id) = match manager(&ctx, &id).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let back = format!("/homeservers/{id}");
    let mut flash = Flash::for_form("backups");
    if fields.confirm.is_none() {
        flash.alert = Some(tr("backups.confirm_missing"));
        return ctx.back(&back, flash).await;
    }
    let Ok(backup) = Uuid::parse_str(&fields.backup) else {
        flash.alert = Some(tr("backups.not_restorable"));
        return ctx.back(&back, flash).await;
    };
    match domain::homeservers::backups::request_restore(
        &ctx.state.portal,
        &ctx.meta,
        Actor::User(user),
        customer_id,
        homeserver_id,
        backup,
    )
    .await
    {
        Ok(true) => {
            ctx.back(&back, Flash::notice(tr("backups.restoring")))
                .await
        }
        Ok(false) => {
            flash.alert = Some(tr("backups.not_restorable"));
            ctx.back(&back, flash).await
        }
        Err(error) => failure(&error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_token_is_valid_to_the_end_of_its_last_day_in_utc() {
        // 2026-12-31 ends at 2027-01-01T00:00:00Z.
        assert_eq!(super::end_of_day("2026-12-31"), Some(1_798_761_600_000));
        assert_eq!(super::end_of_day("31.12.2026"), None);
        assert_eq!(super::end_of_day("2026-02-30"), None);
    }
}
