//! The billing details form.

use super::{failure, require_auth, tr, FormContext};
use app::forms::Flash;
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Form,
};
use domain::{
    accounts::profile,
    audit::Actor,
    billing::details::{self, BillingForm},
};

pub async fn save(ctx: FormContext, Form(form): Form<BillingFields>) -> Response {
    let auth = match require_auth(&ctx).await {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    let portal = &ctx.state.portal;
    // The customer comes from the signed-in membership, never from the request.
    let customer_id = match profile::load(&portal.db, auth.user_id).await {
        Ok(Some(account)) => match account.customer_id {
            Some(id) => id,
            None => return StatusCode::NOT_FOUND.into_response(),
        },
        Ok(None) => return super::see_other("/sign-in"),
        Err(error) => return failure(&error.to_string()),
    };
    let form: BillingForm = form.into();
    let mut flash = Flash::for_form("billing");
    match details::validate(&form, &portal.rates) {
        Ok(valid) => {
            match details::save(
                portal,
                &ctx.meta,
                Actor::User(auth.user_id),
                customer_id,
                &valid,
            )
            .await
            {
                Ok(changed) if changed.is_empty() => flash.notice = Some(tr("billing.unchanged")),
                Ok(_) => {
                    // The tax follows the country and VAT number (P9), and Stripe's invoices
                    // print the name and address: a job brings both up to date, retrying
                    // while Stripe cannot be reached.
                    if let Err(error) = queue_retax(portal, customer_id).await {
                        return failure(&error.to_string());
                    }
                    flash.notice = Some(tr("billing.saved"))
                }
                Err(error) => return failure(&error.to_string()),
            }
        }
        Err(problems) => {
            for (field, key) in problems {
                flash.errors.insert(field.into(), tr(key));
            }
            for (field, value) in form.fields() {
                flash.values.insert(field.into(), value.to_string());
            }
        }
    }
    ctx.back("/billing", flash).await
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct BillingFields {
    name: String,
    company: String,
    address_line1: String,
    address_line2: String,
    postal_code: String,
    city: String,
    country: String,
    billing_email: String,
    vat_number: String,
}

impl From<BillingFields> for BillingForm {
    fn from(f: BillingFields) -> Self {
        BillingForm {
            name: f.name,
            company: f.company,
            address_line1: f.address_line1,
            address_line2: f.address_line2,
            postal_code: f.postal_code,
            city: f.city,
            country: f.country,
            billing_email: f.billing_email,
            vat_number: f.vat_number,
        }
    }
}

async fn queue_retax(portal: &domain::Portal, customer_id: uuid::Uuid) -> Result<(), sqlx::Error> {
    use domain::jobs::{self, NewJob};
    let mut tx = portal.db.begin().await?;
    let job = NewJob::now(
        domain::billing::changes::RETAX_JOB,
        serde_json::json!({ "customer": customer_id }),
        &*portal.clock,
    )
    .dedupe(format!(
        "{}:{customer_id}",
        domain::billing::changes::RETAX_JOB
    ));
    jobs::enqueue(&mut tx, job, &*portal.clock, &*portal.random).await?;
    tx.commit().await
}
