//! Invoice links: "Create a link" (the new link is shown once, in the answer to the POST; only
//! its hash is kept) and "Revoke".

use super::{failure, shown_once, signed_in_customer, tr, FormContext};
use crate::http::plain_page::escape;
use app::forms::Flash;
use axum::{
    extract::Path,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use domain::{accounts::profile::MemberRole, audit::Actor, billing::links};
use uuid::Uuid;

/// The customer and user of a signed-in owner (invoices are the owner's).
async fn owner(ctx: &FormContext) -> Result<(Uuid, Uuid), Response> {
    let (account, customer_id) = signed_in_customer(ctx).await?;
    if !account.role.is_some_and(MemberRole::reads_invoices) {
        return Err(StatusCode::NOT_FOUND.into_response());
    }
    Ok((account.user_id, customer_id))
}

/// The invoice's PDF, for its owner.
pub async fn pdf(ctx: FormContext, Path(id): Path<String>) -> Response {
    let (_, customer_id) = match owner(&ctx).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let portal = &ctx.state.portal;
    let invoice = match domain::billing::documents::get(&portal.db, customer_id, id).await {
        Ok(Some(invoice)) => invoice,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(error) => return failure(&error.to_string()),
    };
    match crate::invoice_pdf::bytes(portal, &invoice).await {
        Ok(bytes) => crate::invoice_pdf::response(&invoice.document.number, bytes),
        Err(error) => failure(&error),
    }
}

/// "Create a link": answers with a page that shows the new link this once.
pub async fn create_link(ctx: FormContext, Path(id): Path<String>) -> Response {
    let (user, customer_id) = match owner(&ctx).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Ok(invoice) = Uuid::parse_str(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let token = match links::create(
        &ctx.state.portal,
        &ctx.meta,
        Actor::User(user),
        customer_id,
        invoice,
        ctx.state.portal.invoice_link_days,
    )
    .await
    {
        Ok(Some(token)) => token,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(error) => return failure(&error.to_string()),
    };
    let url = format!("{}/i/{token}", ctx.state.public_url);
    let back = format!("/billing/invoices/{invoice}");
    let main = format!(
        "<h1>{title}</h1><p>{intro}</p>\
         <p><input class=\"new-link\" type=\"text\" readonly aria-label=\"{title}\" value=\"{url}\"></p>\
         <p class=\"hint\">{once}</p><p><a class=\"button\" href=\"{back}\">{back_text}</a></p>",
        title = escape(&tr("invoice.link_created_title")),
        intro = escape(&tr("invoice.link_created")),
        once = escape(&tr("invoice.link_shown_once")),
        url = escape(&url),
        back_text = escape(&tr("invoice.back_to_invoice")),
    );
    shown_once(&tr("invoice.link_created_title"), &main)
}

/// "Revoke": the link answers as an unknown one from now on.
pub async fn revoke_link(ctx: FormContext, Path((id, link)): Path<(String, String)>) -> Response {
    let (user, customer_id) = match owner(&ctx).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let (Ok(invoice), Ok(link)) = (Uuid::parse_str(&id), Uuid::parse_str(&link)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match links::revoke(
        &ctx.state.portal,
        &ctx.meta,
        Actor::User(user),
        customer_id,
        invoice,
        link,
    )
    .await
    {
        Ok(true) => {
            ctx.back(
                &format!("/billing/invoices/{invoice}"),
                Flash::notice(tr("invoice.link_revoked")),
            )
            .await
        }
        Ok(false) => StatusCode::NOT_FOUND.into_response(),
        Err(error) => failure(&error.to_string()),
    }
}
