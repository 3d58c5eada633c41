//! The homeserver's own actions. "Show the password once": the first admin's generated
//! password is shown in the answer to the POST and erased from the portal in the same step.

use super::{failure, shown_once, signed_in_customer, tr, FormContext};
use crate::http::plain_page::escape;
use axum::{
    extract::Path,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use domain::{
    accounts::profile::MemberRole, audit::Actor, billing::subscriptions, homeservers::lifecycle,
};
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
                portal.hosting.server_name(&sub.server_name)
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
