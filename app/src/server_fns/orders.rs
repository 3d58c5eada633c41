//! What the card page, the order page and the homeserver dashboard show.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardView {
    pub brand: String,
    pub last4: String,
    /// "08/2030"
    pub expires: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardPageView {
    /// Cards are taken only when the portal has Stripe keys and the customer pays by card.
    pub by_card: bool,
    pub card: Option<CardView>,
    pub publishable_key: String,
    pub js_url: String,
    /// For Stripe.js' confirmCardSetup, from the card entry "Enter a card" started; empty
    /// until then.
    pub client_secret: String,
    pub next: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanChoice {
    pub id: String,
    pub name: String,
    pub monthly: String,
    pub annual: String,
    pub trial_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPageView {
    pub email_verified: bool,
    pub has_billing_details: bool,
    pub by_card: bool,
    pub card: Option<CardView>,
    pub currency: String,
    /// The currency is fixed by an earlier purchase.
    pub currency_fixed: bool,
    pub currencies: Vec<String>,
    pub plans: Vec<PlanChoice>,
    /// (id, "Northern Europe (Helsinki, Finland)")
    pub regions: Vec<(String, String)>,
    /// Every region runs on the portal's own machine (the local driver).
    pub regions_local: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRow {
    pub id: String,
    pub server_name: String,
    pub plan: String,
    pub interval: String,
    pub region: String,
    /// A translation key: the order's state as the customer should read it.
    pub status_key: String,
    pub next_payment: Option<String>,
    pub trial_end: Option<String>,
    pub cancel_at_period_end: bool,
    pub by_card: bool,
    /// A payment waits for the customer's confirmation (3-D Secure): the dashboard offers
    /// "Confirm the payment".
    pub needs_confirmation: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManageView {
    pub row: SubscriptionRow,
    pub plan_id: String,
    /// Other plans it can move to, with their price in its currency and interval.
    pub plans: Vec<PlanChoice>,
    /// The plan previewed, and what moving to it invoices now ("€12.34").
    pub preview: Option<(String, String)>,
    /// Plan changes and cancellation are offered (a running card subscription).
    pub changeable: bool,
    pub host: HostView,
}

/// The homeserver itself: its state with the steps to running, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostView {
    /// A translation key of the state.
    pub state_key: String,
    /// The steps to a running homeserver: translation key, and "done", "current" or "todo".
    pub steps: Vec<(String, String)>,
    pub server_name: String,
    pub url: Option<String>,
    pub admin_user: Option<String>,
    pub password_to_reveal: bool,
    /// Provisioning failed at least once and is being retried.
    pub retrying: bool,
    pub version: Option<String>,
    /// "99.8 %" over 30 days, and when it was last checked.
    pub uptime: Option<String>,
    pub last_check: Option<String>,
    /// It does not answer its health check, since this time.
    pub down_since: Option<String>,
    /// Its backups, newest first.
    pub backups: Vec<BackupView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupView {
    pub id: String,
    pub created: String,
    /// "12.3 MB"
    pub size: Option<String>,
    /// A translation key of its state.
    pub state_key: String,
    /// Finished: it can be restored.
    pub restorable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardView {
    pub rows: Vec<SubscriptionRow>,
    pub card: Option<CardView>,
    pub account_created: String,
}

#[cfg(feature = "ssr")]
mod server {
    use super::*;
    use domain::billing::{accounts, cards, subscriptions::SubscriptionStatus};

    pub fn card_view(card: cards::Card) -> CardView {
        CardView {
            brand: card.brand,
            last4: card.last4,
            expires: format!("{:02}/{}", card.exp_month, card.exp_year),
        }
    }

    pub fn date(ms: i64) -> String {
        domain::clock::long_date(ms)
    }

    /// "12.3 MB" (decimal units, as storage is sold).
    pub fn size(bytes: i64) -> String {
        let bytes = bytes.max(0) as f64;
        if bytes < 1e6 {
            format!("{:.1} kB", bytes / 1e3)
        } else if bytes < 1e9 {
            format!("{:.1} MB", bytes / 1e6)
        } else {
            format!("{:.2} GB", bytes / 1e9)
        }
    }

    pub fn backup_view(b: domain::homeservers::backups::Backup) -> BackupView {
        BackupView {
            id: b.id.to_string(),
            created: domain::clock::long_date_time(b.created_at),
            size: b.size_bytes.map(size),
            state_key: format!("backups.state_{}", b.state.as_str()),
            restorable: b.state == domain::homeservers::backups::BackupState::Done,
        }
    }

    pub fn host(
        o: domain::homeservers::lifecycle::Overview,
        backups: Vec<domain::homeservers::backups::Backup>,
    ) -> HostView {
        use domain::billing::subscriptions::HomeserverState as State;
        let reached = match o.state {
            State::WaitingForPayment => 0,
            State::WaitingForProvisioning | State::Provisioning => 1,
            _ => 2,
        };
        let steps = [
            "homeserver.step_paid",
            "homeserver.step_provisioning",
            "homeserver.step_running",
        ]
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let done = i < reached || (i == 2 && o.state == State::Running);
            let mark = if done {
                "done"
            } else if i == reached {
                "current"
            } else {
                "todo"
            };
            (key.to_string(), mark.to_string())
        })
        .collect();
        HostView {
            state_key: format!("homeserver.state_{}", o.state.as_str()),
            steps,
            server_name: o.server_name,
            url: o.url,
            admin_user: o.admin_user,
            password_to_reveal: o.password_to_reveal,
            retrying: o.last_error.is_some()
                && matches!(o.state, State::WaitingForProvisioning | State::Provisioning),
            version: o.version,
            uptime: o
                .uptime_per_mille
                .map(|m| format!("{}.{} %", m / 10, m % 10)),
            last_check: o.last_check.map(domain::clock::long_date_time),
            down_since: o.down_since.map(domain::clock::long_date_time),
            backups: backups.into_iter().map(backup_view).collect(),
        }
    }

    pub fn status_key(s: &domain::billing::subscriptions::Subscription) -> String {
        use domain::billing::subscriptions::{
            HomeserverState as Home, SubscriptionStatus as Status,
        };
        let manual = s.method == accounts::Method::Manual;
        let waiting = matches!(
            s.homeserver_state,
            Home::WaitingForProvisioning | Home::Provisioning
        );
        // Every status is named: a new one is a compile error here, not a silent default.
        if s.payment_action_invoice.is_some() {
            return "dashboard.status_needs_confirmation".to_string();
        }
        let key = match s.status {
            Status::Pending => "dashboard.status_pending",
            Status::Incomplete if manual => "dashboard.status_awaiting_transfer",
            Status::Incomplete => "dashboard.status_payment_failed",
            Status::Trialing if waiting => "dashboard.status_trial_waiting",
            Status::Active if waiting => "dashboard.status_waiting_for_provisioning",
            Status::Trialing => "dashboard.status_trialing",
            Status::Active => "dashboard.status_active",
            Status::PastDue | Status::Unpaid if manual => "dashboard.status_invoice_overdue",
            Status::PastDue | Status::Unpaid => "dashboard.status_past_due",
            Status::Paused => "dashboard.status_paused",
            Status::Canceled | Status::IncompleteExpired => "dashboard.status_canceled",
        };
        key.to_string()
    }

    /// A subscription as the dashboard and its page show it.
    pub fn row(
        portal: &domain::Portal,
        s: domain::billing::subscriptions::Subscription,
    ) -> SubscriptionRow {
        SubscriptionRow {
            id: s.id.to_string(),
            status_key: status_key(&s),
            plan: portal
                .plans
                .plans
                .iter()
                .find(|p| p.id == s.plan_id)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| s.plan_id.clone()),
            interval: s.billing_interval.clone(),
            region: portal
                .regions
                .regions
                .iter()
                .find(|r| r.id == s.region)
                .map(|r| r.label())
                .unwrap_or_else(|| s.region.clone()),
            next_payment: s
                .current_period_end
                .filter(|_| !s.cancel_at_period_end && s.status != SubscriptionStatus::Canceled)
                .map(date),
            trial_end: s
                .trial_end
                .filter(|_| {
                    s.status == domain::billing::subscriptions::SubscriptionStatus::Trialing
                })
                .map(date),
            cancel_at_period_end: s.cancel_at_period_end,
            by_card: s.method == accounts::Method::Stripe,
            needs_confirmation: s.payment_action_invoice.is_some(),
            server_name: s.server_name,
        }
    }

    pub async fn by_card(
        portal: &domain::Portal,
        customer_id: uuid::Uuid,
    ) -> Result<bool, ServerFnError> {
        let (method, _) = accounts::peek(portal, customer_id)
            .await
            .map_err(ServerFnError::new)?;
        Ok(method == accounts::Method::Stripe && portal.payments.is_some())
    }
}

/// The payment-confirmation page: what "Confirm the payment" (a POST) asked Stripe for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmPageView {
    pub publishable_key: String,
    pub js_url: String,
    /// Empty when no confirmation was started (or it is over an hour old).
    pub client_secret: String,
    pub payment_method: String,
    pub subscription: String,
    pub server_name: String,
    pub amount: String,
}

#[server(endpoint = "confirm_payment_page")]
pub async fn load_confirm_page() -> Result<ConfirmPageView, ServerFnError> {
    use crate::forms::{PaymentConfirmation, PAYMENT_CONFIRMATION_KEY};
    let (session, _, _) = crate::server_fns::account::require_customer().await?;
    let portal = super::portal()?;
    let mut view = ConfirmPageView {
        publishable_key: String::new(),
        js_url: String::new(),
        client_secret: String::new(),
        payment_method: String::new(),
        subscription: String::new(),
        server_name: String::new(),
        amount: String::new(),
    };
    // Only what a POST started: loading this page asks Stripe nothing.
    let started = session
        .get::<PaymentConfirmation>(PAYMENT_CONFIRMATION_KEY)
        .await
        .ok()
        .flatten()
        .filter(|c| portal.clock.now_ms() - c.at < PaymentConfirmation::LIFETIME_MS);
    if let (Some(gateway), Some(started)) = (portal.payments.as_ref(), started) {
        view.publishable_key = gateway.config.publishable_key.clone();
        view.js_url = gateway.config.js_url.clone();
        view.client_secret = started.client_secret;
        view.payment_method = started.payment_method;
        view.subscription = started.subscription;
        view.server_name = started.server_name;
        view.amount = started.amount;
    }
    Ok(view)
}

#[server(endpoint = "card_page")]
pub async fn load_card_page(next: String) -> Result<CardPageView, ServerFnError> {
    use domain::billing::cards;
    let (session, _, customer_id) = crate::server_fns::account::require_customer().await?;
    let portal = super::portal()?;
    let by_card = server::by_card(&portal, customer_id).await?;
    let card = cards::load(&portal.db, customer_id)
        .await
        .map_err(ServerFnError::new)?
        .map(server::card_view);
    let mut view = CardPageView {
        by_card,
        card,
        publishable_key: String::new(),
        js_url: String::new(),
        client_secret: String::new(),
        next: crate::forms::return_path(&next, "/dashboard").to_string(),
    };
    if let (true, Some(gateway)) = (by_card, portal.payments.as_ref()) {
        view.publishable_key = gateway.config.publishable_key.clone();
        view.js_url = gateway.config.js_url.clone();
        // Only what "Add a card" (a POST) started: loading this page creates nothing.
        let setup = session
            .get::<crate::forms::CardSetup>(crate::forms::CARD_SETUP_KEY)
            .await
            .ok()
            .flatten()
            .filter(|s| portal.clock.now_ms() - s.at < crate::forms::CardSetup::LIFETIME_MS);
        view.client_secret = setup.map(|s| s.client_secret).unwrap_or_default();
    }
    Ok(view)
}

#[server(endpoint = "order_page")]
pub async fn load_order_page() -> Result<OrderPageView, ServerFnError> {
    use domain::{
        billing::{accounts, cards, details},
        i18n::Locale,
        money::format,
    };
    let (_, account, customer_id) = crate::server_fns::account::require_customer().await?;
    let portal = super::portal()?;
    let (_, fixed_currency) = accounts::peek(&portal, customer_id)
        .await
        .map_err(ServerFnError::new)?;
    let currency = fixed_currency
        .clone()
        .unwrap_or_else(|| portal.plans.default_currency.clone());
    let mut currencies: Vec<String> = portal
        .plans
        .plans
        .iter()
        .flat_map(|p| p.prices.keys().cloned())
        .collect();
    currencies.sort();
    currencies.dedup();
    let plans = portal
        .plans
        .plans
        .iter()
        .filter_map(|p| {
            let price = p.prices.get(&currency)?;
            Some(PlanChoice {
                id: p.id.clone(),
                name: p.name.clone(),
                monthly: format(price.monthly, &currency, Locale::En),
                annual: format(price.annual, &currency, Locale::En),
                trial_days: p.trial_days,
            })
        })
        .collect();
    Ok(OrderPageView {
        regions_local: portal.regions.all_local(),
        email_verified: account.email_verified(),
        has_billing_details: details::load(&portal.db, customer_id)
            .await
            .map_err(ServerFnError::new)?
            .is_some(),
        by_card: server::by_card(&portal, customer_id).await?,
        card: cards::load(&portal.db, customer_id)
            .await
            .map_err(ServerFnError::new)?
            .map(server::card_view),
        currency_fixed: fixed_currency.is_some(),
        currency,
        currencies,
        plans,
        regions: portal
            .regions
            .regions
            .iter()
            .filter(|r| r.available)
            .map(|r| {
                // Where only some regions are local, those say so by their name.
                let label = if portal.regions.local_among_others(r) {
                    format!(
                        "{} ({})",
                        r.label(),
                        crate::i18n::tr("order.region_local_machine")
                    )
                } else {
                    r.label()
                };
                (r.id.clone(), label)
            })
            .collect(),
    })
}

#[server(endpoint = "dashboard")]
pub async fn load_dashboard() -> Result<DashboardView, ServerFnError> {
    use domain::billing::{cards, subscriptions};
    let (_, account, customer_id) = crate::server_fns::account::require_customer().await?;
    let portal = super::portal()?;
    let rows = subscriptions::list(&portal.db, customer_id)
        .await
        .map_err(ServerFnError::new)?
        .into_iter()
        .map(|s| server::row(&portal, s))
        .collect();
    Ok(DashboardView {
        rows,
        card: cards::load(&portal.db, customer_id)
            .await
            .map_err(ServerFnError::new)?
            .map(server::card_view),
        account_created: server::date(account.created_at),
    })
}

/// The homeserver's state, as the key its page shows (read by the page's watcher while the
/// homeserver is being set up).
#[server(endpoint = "homeserver_state")]
pub async fn homeserver_state(id: String) -> Result<String, ServerFnError> {
    let (_, _, customer_id) = crate::server_fns::account::require_customer().await?;
    let portal = super::portal()?;
    let id = uuid::Uuid::parse_str(&id).map_err(|_| ServerFnError::new("not found"))?;
    let sub = domain::billing::subscriptions::get(&portal.db, customer_id, id)
        .await
        .map_err(ServerFnError::new)?
        .ok_or_else(|| ServerFnError::new("not found"))?;
    Ok(format!(
        "homeserver.state_{}",
        sub.homeserver_state.as_str()
    ))
}

#[server(endpoint = "manage")]
pub async fn load_manage(id: String) -> Result<ManageView, ServerFnError> {
    use domain::{billing::subscriptions, i18n::Locale, money::format};
    let (session, _, customer_id) = crate::server_fns::account::require_customer().await?;
    let portal = super::portal()?;
    let id = uuid::Uuid::parse_str(&id).map_err(|_| ServerFnError::new("not found"))?;
    let Some(sub) = subscriptions::get(&portal.db, customer_id, id)
        .await
        .map_err(ServerFnError::new)?
    else {
        leptos_axum::redirect("/dashboard");
        return Err(ServerFnError::new("not found"));
    };
    let interval = domain::plans::Interval::parse(&sub.billing_interval).unwrap_or_default();
    let plans = portal
        .plans
        .plans
        .iter()
        .filter(|p| p.id != sub.plan_id)
        .filter_map(|p| {
            let price = p.prices.get(&sub.currency)?;
            Some(PlanChoice {
                id: p.id.clone(),
                name: p.name.clone(),
                monthly: format(price.amount(interval), &sub.currency, Locale::En),
                annual: format(price.annual, &sub.currency, Locale::En),
                trial_days: None,
            })
        })
        .collect();
    let changeable = sub.method == domain::billing::accounts::Method::Stripe
        && portal.payments.is_some()
        && sub.status.live();
    // The price "See the price" (a POST) asked Stripe for; loading this page asks nothing.
    let preview = session
        .get::<crate::forms::PlanPreview>(crate::forms::PLAN_PREVIEW_KEY)
        .await
        .ok()
        .flatten()
        .filter(|p| {
            changeable
                && p.subscription == id.to_string()
                && portal.clock.now_ms() - p.at < crate::forms::PlanPreview::LIFETIME_MS
        })
        .map(|p| (p.plan, p.amount));
    let overview = domain::homeservers::lifecycle::overview(&portal, sub.homeserver_id)
        .await
        .map_err(ServerFnError::new)?
        .ok_or_else(|| ServerFnError::new("not found"))?;
    let backups = domain::homeservers::backups::list(&portal, sub.homeserver_id)
        .await
        .map_err(ServerFnError::new)?;
    Ok(ManageView {
        host: server::host(overview, backups),
        plan_id: sub.plan_id.clone(),
        row: server::row(&portal, sub),
        plans,
        preview,
        changeable,
    })
}
