//! The billing details form.

use super::{failure, signed_in_customer, tr, FormContext};
use app::forms::Flash;
use axum::{response::Response, Form};
use domain::{
    audit::Actor,
    billing::details::{self, BillingForm},
};

pub async fn save(ctx: FormContext, Form(form): Form<BillingFields>) -> Response {
    let (account, customer_id) = match signed_in_customer(&ctx).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let portal = &ctx.state.portal;
    let form: BillingForm = form.into();
    let mut flash = Flash::for_form("billing");
    match details::validate(&form, &portal.rates) {
        Ok(valid) => {
            match details::save(
                portal,
                &ctx.meta,
                Actor::User(account.user_id),
                customer_id,
                &valid,
            )
            .await
            {
                Ok(changed) if changed.is_empty() => flash.notice = Some(tr("billing.unchanged")),
                Ok(_) => flash.notice = Some(tr("billing.saved")),
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
