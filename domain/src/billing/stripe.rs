//! The portal's calls to Stripe, typed through async-stripe.
//!
//! - Every call has a timeout (per attempt) and a bounded number of attempts; retries reuse the
//!   same idempotency key, so a retried create makes one object.
//! - Creates that must happen once take the key the portal stored before the call.
//! - Errors become [`PaymentError`]: a message a customer can read, and a log line without card
//!   data or secrets (Stripe's error messages carry neither).

use super::{subscriptions::SubscriptionStatus, InvoiceStatus};
use ::stripe::{Client, ClientBuilder, StripeError};
use std::{collections::HashMap, time::Duration};
use stripe_client_core::{IdempotencyKey, RequestStrategy, StripeRequest};

/// Attempts per call, the first included.
const ATTEMPTS: u32 = 3;

#[derive(Debug, Clone)]
pub struct StripeConfig {
    pub secret_key: String,
    pub publishable_key: String,
    pub webhook_secret: String,
    /// `https://api.stripe.com` unless a test server stands in.
    pub api_base: String,
    /// Stripe.js, `https://js.stripe.com/v3/` unless a test server stands in.
    pub js_url: String,
    pub timeout: Duration,
    /// Payment actions (card setup, order, plan change and its preview, cancel, resume) one
    /// customer may start per minute, so that nobody can spend the Stripe account's rate limit.
    pub actions_per_customer_per_minute: u32,
    /// When the recovery job creates the Stripe subscription of an order whose request died
    /// (a client that went away, a killed process) before Stripe answered.
    pub recover_orders_after: Duration,
}

/// What went wrong with a payment call, in terms a customer can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The card was declined; Stripe's own message says why ("Your card was declined.").
    #[error("card declined: {0}")]
    Declined(String),
    /// Stripe refused the request: a bug or a configuration mistake on our side.
    #[error("stripe rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// Stripe could not be reached or did not answer in time (after retries).
    #[error("stripe unavailable: {0}")]
    Unavailable(String),
    /// Stripe answered something we could not read.
    #[error("unexpected answer from stripe: {0}")]
    Unexpected(String),
    /// The customer started more payment actions than allowed in a minute; nothing was sent.
    #[error("too many payment actions from one customer")]
    TooManyRequests,
}

impl PaymentError {
    /// The translation key of the message shown to the customer.
    pub fn message_key(&self) -> &'static str {
        match self {
            PaymentError::Declined(_) => "payment.declined",
            PaymentError::Rejected { .. } | PaymentError::Unexpected(_) => "payment.failed",
            PaymentError::Unavailable(_) => "payment.unavailable",
            PaymentError::TooManyRequests => "payment.too_many",
        }
    }

    fn retryable(&self) -> bool {
        matches!(self, PaymentError::Unavailable(_))
    }
}

impl From<StripeError> for PaymentError {
    fn from(e: StripeError) -> Self {
        match e {
            StripeError::Stripe(api, status) => {
                let message = api.message.clone().unwrap_or_default();
                if status == 402 || api.decline_code.is_some() {
                    PaymentError::Declined(message)
                } else if status == 429 || status >= 500 {
                    PaymentError::Unavailable(format!("{status}: {message}"))
                } else {
                    PaymentError::Rejected { status, message }
                }
            }
            StripeError::Timeout => PaymentError::Unavailable("timed out".into()),
            StripeError::ClientError(m) => PaymentError::Unavailable(m),
            StripeError::JSONDeserialize(m) => PaymentError::Unexpected(m),
            StripeError::ConfigError(m) => PaymentError::Rejected {
                status: 0,
                message: m,
            },
        }
    }
}

/// A card as the portal keeps it: never the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSummary {
    pub payment_method_id: String,
    pub brand: String,
    pub last4: String,
    pub exp_month: i64,
    pub exp_year: i64,
}

/// The part of a Stripe subscription the portal mirrors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    pub id: String,
    pub customer: String,
    pub status: SubscriptionStatus,
    pub price_id: Option<String>,
    pub item_id: Option<String>,
    /// The tax rates on the item (Stripe ids).
    pub tax_rates: Vec<String>,
    /// A plan change waits for its invoice to be paid (`pending_if_incomplete`); the items
    /// above are still the old ones.
    pub pending_update: bool,
    pub cancel_at_period_end: bool,
    /// Seconds since the epoch.
    pub current_period_end: Option<i64>,
    pub trial_end: Option<i64>,
    pub latest_invoice: Option<String>,
    pub metadata: HashMap<String, String>,
}

/// What a new subscription is made of.
#[derive(Debug, Clone)]
pub struct NewSubscription<'a> {
    pub customer: &'a str,
    pub price: &'a str,
    pub tax_rate: Option<&'a str>,
    pub trial_days: Option<u32>,
    /// The portal's own subscription id, put in metadata so a retry can find the object.
    pub portal_id: &'a str,
    pub idempotency_key: &'a str,
}

type CustomerLimiter = governor::RateLimiter<
    uuid::Uuid,
    governor::state::keyed::DefaultKeyedStateStore<uuid::Uuid>,
    governor::clock::DefaultClock,
>;

#[derive(Clone)]
pub struct Gateway {
    client: Client,
    pub config: StripeConfig,
    /// Payment actions per customer (per replica); customers are few, idle ones are pruned.
    limiter: std::sync::Arc<CustomerLimiter>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("api_base", &self.config.api_base)
            .finish_non_exhaustive()
    }
}

fn key(k: &str) -> Result<RequestStrategy, PaymentError> {
    IdempotencyKey::new(k)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| PaymentError::Unexpected(format!("idempotency key: {e:?}")))
}

impl Gateway {
    pub fn new(config: StripeConfig) -> Result<Self, String> {
        let base = format!("{}/", config.api_base.trim_end_matches('/'));
        let client = ClientBuilder::new(config.secret_key.clone())
            .url(base)
            .timeout(config.timeout)
            .app_info(
                "matrix-hosting-portal",
                Some(env!("CARGO_PKG_VERSION").into()),
                None,
            )
            .build()
            .map_err(|e| format!("stripe client: {e}"))?;
        let per_minute = std::num::NonZeroU32::new(config.actions_per_customer_per_minute)
            .ok_or("the payment actions per customer per minute must be at least 1")?;
        let limiter = governor::RateLimiter::keyed(governor::Quota::per_minute(per_minute));
        Ok(Self {
            client,
            config,
            limiter: std::sync::Arc::new(limiter),
        })
    }

    /// Admits one payment action of `customer`, or refuses it when the customer started too
    /// many in the last minute. Called by the services before they call Stripe for a customer.
    pub fn admit(&self, customer: uuid::Uuid) -> Result<(), PaymentError> {
        if self.limiter.len() > 10_000 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&customer).map_err(|_| {
            tracing::warn!(%customer, "payment actions limited");
            PaymentError::TooManyRequests
        })
    }

    /// The client secret of `id` when it is `customer`'s SetupIntent still waiting for a card,
    /// so that "Add a card" pressed twice reuses one intent.
    pub async fn open_setup_intent(
        &self,
        customer: &str,
        id: &str,
    ) -> Result<Option<String>, PaymentError> {
        use stripe_shared::SetupIntentStatus as S;
        let intent = match self.setup_intent(id).await {
            Ok(intent) => intent,
            Err(PaymentError::Rejected { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let own =
            intent.customer.as_ref().map(|c| c.id().to_string()) == Some(customer.to_string());
        let open = matches!(
            intent.status,
            S::RequiresPaymentMethod | S::RequiresConfirmation | S::RequiresAction
        );
        Ok(intent.client_secret.filter(|_| own && open))
    }

    /// Runs `call` up to [`ATTEMPTS`] times while Stripe is unreachable, waiting 200 ms, then
    /// 400 ms between attempts. Callers pass the same idempotency key every time.
    async fn retrying<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, PaymentError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StripeError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match call().await.map_err(PaymentError::from) {
                Ok(v) => return Ok(v),
                Err(e) if e.retryable() && attempt < ATTEMPTS => {
                    tracing::warn!(call = what, attempt, error = %e, "stripe call failed, retrying");
                    tokio::time::sleep(Duration::from_millis(200 << (attempt - 1))).await;
                }
                Err(e) => {
                    tracing::warn!(call = what, attempt, error = %e, "stripe call failed");
                    return Err(e);
                }
            }
        }
    }

    /// Creates the Stripe customer for a portal customer (`portal_customer` in its metadata),
    /// or finds the one a previous attempt made.
    pub async fn create_customer(
        &self,
        portal_customer: &str,
        email: &str,
        name: &str,
        idempotency_key: &str,
    ) -> Result<String, PaymentError> {
        use stripe_core::customer::{CreateCustomer, ListCustomer};
        let existing = self
            .retrying("list customers", || async {
                ListCustomer::new()
                    .email(email)
                    .limit(100)
                    .send(&self.client)
                    .await
            })
            .await?;
        if let Some(found) = existing.data.iter().find(|c| {
            c.metadata
                .as_ref()
                .and_then(|m| m.get("portal_customer"))
                .map(String::as_str)
                == Some(portal_customer)
        }) {
            return Ok(found.id.to_string());
        }
        let strategy = key(idempotency_key)?;
        let metadata =
            HashMap::from([("portal_customer".to_string(), portal_customer.to_string())]);
        let created = self
            .retrying("create customer", || async {
                CreateCustomer::new()
                    .email(email)
                    .name(name)
                    .metadata(metadata.clone())
                    .customize()
                    .request_strategy(strategy.clone())
                    .send(&self.client)
                    .await
            })
            .await?;
        Ok(created.id.to_string())
    }

    /// Updates the name, email and address Stripe prints on its invoices.
    pub async fn update_customer(
        &self,
        customer: &str,
        email: &str,
        name: &str,
        address: CustomerAddress,
    ) -> Result<(), PaymentError> {
        use stripe_core::customer::{OptionalFieldsCustomerAddress, UpdateCustomer};
        let address = OptionalFieldsCustomerAddress {
            city: Some(address.city),
            country: Some(address.country),
            line1: Some(address.line1),
            line2: address.line2,
            postal_code: Some(address.postal_code),
            state: None,
        };
        self.retrying("update customer", || async {
            UpdateCustomer::new(customer)
                .email(email)
                .name(name)
                .address(address.clone())
                .send(&self.client)
                .await
        })
        .await?;
        Ok(())
    }

    /// A SetupIntent for entering a card in the browser; returns its id and client secret.
    pub async fn create_setup_intent(
        &self,
        customer: &str,
    ) -> Result<(String, String), PaymentError> {
        use stripe_core::setup_intent::{CreateSetupIntent, CreateSetupIntentUsage};
        let intent = self
            .retrying("create setup intent", || async {
                CreateSetupIntent::new()
                    .customer(customer)
                    .usage(CreateSetupIntentUsage::OffSession)
                    .send(&self.client)
                    .await
            })
            .await?;
        let secret = intent.client_secret.clone().ok_or_else(|| {
            PaymentError::Unexpected("setup intent without a client secret".into())
        })?;
        Ok((intent.id.to_string(), secret))
    }

    /// The card a confirmed SetupIntent of this customer produced. `Ok(None)` when the intent
    /// is not the customer's or did not succeed.
    pub async fn card_of_setup_intent(
        &self,
        customer: &str,
        setup_intent: &str,
    ) -> Result<Option<CardSummary>, PaymentError> {
        let intent = match self.setup_intent(setup_intent).await {
            Ok(intent) => intent,
            // An id that names no SetupIntent: nothing was confirmed.
            Err(PaymentError::Rejected { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let own =
            intent.customer.as_ref().map(|c| c.id().to_string()) == Some(customer.to_string());
        if !own || intent.status != stripe_shared::SetupIntentStatus::Succeeded {
            return Ok(None);
        }
        let Some(pm) = intent.payment_method.as_ref().map(|p| p.id().to_string()) else {
            return Ok(None);
        };
        self.card(&pm).await.map(Some)
    }

    async fn setup_intent(&self, id: &str) -> Result<stripe_shared::SetupIntent, PaymentError> {
        use stripe_core::setup_intent::RetrieveSetupIntent;
        let id: stripe_shared::SetupIntentId = id.into();
        self.retrying("retrieve setup intent", || async {
            RetrieveSetupIntent::new(id.clone())
                .send(&self.client)
                .await
        })
        .await
    }

    async fn payment_method(&self, id: &str) -> Result<stripe_shared::PaymentMethod, PaymentError> {
        use stripe_payment::payment_method::RetrievePaymentMethod;
        let id: stripe_shared::PaymentMethodId = id.into();
        self.retrying("retrieve payment method", || async {
            RetrievePaymentMethod::new(id.clone())
                .send(&self.client)
                .await
        })
        .await
    }

    pub async fn card(&self, payment_method: &str) -> Result<CardSummary, PaymentError> {
        let pm = self.payment_method(payment_method).await?;
        let card = pm
            .card
            .ok_or_else(|| PaymentError::Unexpected("payment method is not a card".into()))?;
        Ok(CardSummary {
            payment_method_id: pm.id.to_string(),
            brand: card.brand,
            last4: card.last4,
            exp_month: card.exp_month,
            exp_year: card.exp_year,
        })
    }

    /// Makes the card the one the customer's invoices are charged to.
    pub async fn set_default_card(
        &self,
        customer: &str,
        payment_method: &str,
    ) -> Result<(), PaymentError> {
        use stripe_core::customer::{UpdateCustomer, UpdateCustomerInvoiceSettings};
        let settings = UpdateCustomerInvoiceSettings {
            default_payment_method: Some(payment_method.to_string()),
            ..Default::default()
        };
        self.retrying("set default card", || async {
            UpdateCustomer::new(customer)
                .invoice_settings(settings.clone())
                .send(&self.client)
                .await
        })
        .await?;
        Ok(())
    }

    pub async fn detach_card(&self, payment_method: &str) -> Result<(), PaymentError> {
        use stripe_payment::payment_method::DetachPaymentMethod;
        let id: stripe_shared::PaymentMethodId = payment_method.into();
        self.retrying("detach payment method", || async {
            DetachPaymentMethod::new(id.clone())
                .send(&self.client)
                .await
        })
        .await?;
        Ok(())
    }

    /// The Stripe tax rate for a decision key (`vat-FI-2550`), made once and found again by
    /// its metadata.
    pub async fn tax_rate(
        &self,
        decision_key: &str,
        percentage: f64,
        country: Option<&str>,
        display_name: &str,
    ) -> Result<String, PaymentError> {
        use stripe_product::tax_rate::{CreateTaxRate, ListTaxRate};
        let listed = self
            .retrying("list tax rates", || async {
                ListTaxRate::new()
                    .active(true)
                    .limit(100)
                    .send(&self.client)
                    .await
            })
            .await?;
        if let Some(found) = listed.data.iter().find(|r| {
            r.metadata
                .as_ref()
                .and_then(|m| m.get("portal_key"))
                .map(String::as_str)
                == Some(decision_key)
        }) {
            return Ok(found.id.to_string());
        }
        let strategy = key(&format!("tax-rate-{decision_key}"))?;
        let metadata = HashMap::from([("portal_key".to_string(), decision_key.to_string())]);
        let created = self
            .retrying("create tax rate", || async {
                let mut req = CreateTaxRate::new(display_name, false, percentage)
                    .metadata(metadata.clone())
                    .description(decision_key);
                if let Some(c) = country {
                    req = req.country(c).jurisdiction(c);
                }
                req.customize()
                    .request_strategy(strategy.clone())
                    .send(&self.client)
                    .await
            })
            .await?;
        Ok(created.id.to_string())
    }

    /// The customer's subscription that carries this portal id and is live, or waits for its
    /// first payment under this attempt's key (`attempt`): one whose first payment was declined
    /// belongs to an earlier attempt (each attempt after a decline has a new key) and does not
    /// count, so a new attempt makes a new one.
    pub async fn find_subscription(
        &self,
        customer: &str,
        portal_id: &str,
        attempt: &str,
    ) -> Result<Option<SubscriptionState>, PaymentError> {
        use stripe_billing::subscription::{ListSubscription, ListSubscriptionStatus};
        let listed = self
            .retrying("list subscriptions", || async {
                ListSubscription::new()
                    .customer(customer)
                    .status(ListSubscriptionStatus::All)
                    .limit(100)
                    .send(&self.client)
                    .await
            })
            .await?;
        let states = listed
            .data
            .into_iter()
            .map(subscription_state)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(states.into_iter().find(|s| {
            s.metadata.get("portal_subscription").map(String::as_str) == Some(portal_id)
                && (matches!(
                    s.status,
                    SubscriptionStatus::Active
                        | SubscriptionStatus::Trialing
                        | SubscriptionStatus::PastDue
                        | SubscriptionStatus::Unpaid
                ) || (s.status == SubscriptionStatus::Incomplete
                    && s.metadata.get("portal_attempt").map(String::as_str) == Some(attempt)))
        }))
    }

    /// Creates the subscription unless a previous attempt did (found by its metadata), so a
    /// retry after a crash or a double click makes one. `default_incomplete`: the first
    /// invoice's payment is confirmed by the customer in the browser (Stripe.js
    /// `confirmCardPayment` on the payment-confirmation page, which handles 3-D Secure); until
    /// then the subscription is `incomplete`.
    pub async fn create_subscription(
        &self,
        new: &NewSubscription<'_>,
    ) -> Result<SubscriptionState, PaymentError> {
        use stripe_billing::subscription::{
            CreateSubscription, CreateSubscriptionItems, CreateSubscriptionPaymentBehavior,
        };
        if let Some(found) = self
            .find_subscription(new.customer, new.portal_id, new.idempotency_key)
            .await?
        {
            return Ok(found);
        }
        let strategy = key(new.idempotency_key)?;
        let item = CreateSubscriptionItems {
            price: Some(new.price.to_string()),
            quantity: Some(1),
            tax_rates: new.tax_rate.map(|t| vec![t.to_string()]),
            ..Default::default()
        };
        let metadata = HashMap::from([
            ("portal_subscription".to_string(), new.portal_id.to_string()),
            (
                "portal_attempt".to_string(),
                new.idempotency_key.to_string(),
            ),
        ]);
        let created = self
            .retrying("create subscription", || async {
                let mut req = CreateSubscription::new()
                    .customer(new.customer)
                    .items(vec![item.clone()])
                    .metadata(metadata.clone())
                    .payment_behavior(CreateSubscriptionPaymentBehavior::DefaultIncomplete);
                if let Some(days) = new.trial_days.filter(|d| *d > 0) {
                    req = req.trial_period_days(days);
                }
                req.customize()
                    .request_strategy(strategy.clone())
                    .send(&self.client)
                    .await
            })
            .await?;
        subscription_state(created)
    }

    /// Ends the subscription at the end of its period (`true`), or keeps it going (`false`).
    pub async fn set_cancel_at_period_end(
        &self,
        id: &str,
        cancel: bool,
    ) -> Result<SubscriptionState, PaymentError> {
        use stripe_billing::subscription::UpdateSubscription;
        let id: stripe_shared::SubscriptionId = id.into();
        let sub = self
            .retrying("update subscription", || async {
                UpdateSubscription::new(id.clone())
                    .cancel_at_period_end(cancel)
                    .send(&self.client)
                    .await
            })
            .await?;
        subscription_state(sub)
    }

    /// Moves the subscription's one item to `price`, invoicing the prorated difference at once,
    /// only if that invoice is paid (`pending_if_incomplete`): a declined payment leaves the
    /// subscription on its old price, with the change pending at Stripe. Stripe accepts only
    /// price and quantity on the items of such an update, so the tax rate is set before
    /// ([`Gateway::set_tax_rate`]).
    pub async fn change_price(
        &self,
        id: &str,
        item: &str,
        price: &str,
        idempotency_key: &str,
    ) -> Result<SubscriptionState, PaymentError> {
        use stripe_billing::subscription::{
            UpdateSubscription, UpdateSubscriptionItems, UpdateSubscriptionPaymentBehavior,
            UpdateSubscriptionProrationBehavior,
        };
        let strategy = key(idempotency_key)?;
        let id: stripe_shared::SubscriptionId = id.into();
        let items = vec![UpdateSubscriptionItems {
            id: Some(item.to_string()),
            price: Some(price.to_string()),
            quantity: Some(1),
            ..Default::default()
        }];
        let sub = self
            .retrying("change subscription price", || async {
                UpdateSubscription::new(id.clone())
                    .items(items.clone())
                    .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice)
                    .payment_behavior(UpdateSubscriptionPaymentBehavior::PendingIfIncomplete)
                    .customize()
                    .request_strategy(strategy.clone())
                    .send(&self.client)
                    .await
            })
            .await?;
        subscription_state(sub)
    }

    /// Puts another tax rate on the subscription's item from the next invoice on (no proration:
    /// what was invoiced stays as it was).
    pub async fn set_tax_rate(
        &self,
        id: &str,
        item: &str,
        tax_rate: Option<&str>,
    ) -> Result<SubscriptionState, PaymentError> {
        use stripe_billing::subscription::{
            UpdateSubscription, UpdateSubscriptionItems, UpdateSubscriptionProrationBehavior,
        };
        let id: stripe_shared::SubscriptionId = id.into();
        let items = vec![UpdateSubscriptionItems {
            id: Some(item.to_string()),
            tax_rates: Some(tax_rate.map(|t| vec![t.to_string()]).unwrap_or_default()),
            ..Default::default()
        }];
        let sub = self
            .retrying("set subscription tax rate", || async {
                UpdateSubscription::new(id.clone())
                    .items(items.clone())
                    .proration_behavior(UpdateSubscriptionProrationBehavior::None)
                    .send(&self.client)
                    .await
            })
            .await?;
        subscription_state(sub)
    }

    /// What the customer would be invoiced now if the subscription moved to `price`.
    pub async fn preview_price_change(
        &self,
        customer: &str,
        id: &str,
        item: &str,
        price: &str,
        tax_rate: Option<&str>,
    ) -> Result<InvoiceState, PaymentError> {
        use stripe_billing::invoice::{
            CreatePreviewInvoice, CreatePreviewInvoiceSubscriptionDetails,
            CreatePreviewInvoiceSubscriptionDetailsItems,
        };
        let details = CreatePreviewInvoiceSubscriptionDetails {
            items: Some(vec![CreatePreviewInvoiceSubscriptionDetailsItems {
                id: Some(item.to_string()),
                price: Some(price.to_string()),
                quantity: Some(1),
                tax_rates: tax_rate.map(|t| vec![t.to_string()]),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let invoice = self
            .retrying("preview invoice", || async {
                CreatePreviewInvoice::new()
                    .customer(customer)
                    .subscription(id)
                    .subscription_details(details.clone())
                    .send(&self.client)
                    .await
            })
            .await?;
        invoice_state(invoice)
    }

    /// Ends the subscription now (dunning's last step).
    pub async fn cancel_now(&self, id: &str) -> Result<SubscriptionState, PaymentError> {
        use stripe_billing::subscription::CancelSubscription;
        let id: stripe_shared::SubscriptionId = id.into();
        let sub = self
            .retrying("cancel subscription", || async {
                CancelSubscription::new(id.clone()).send(&self.client).await
            })
            .await?;
        subscription_state(sub)
    }

    /// Where the payment of an invoice stands, and the client secret the browser confirms it
    /// with. The PaymentIntent's id is the part of its client secret before `_secret_` (as
    /// Stripe.js reads it); the invoice names no PaymentIntent at this API version.
    pub async fn invoice_payment(&self, id: &str) -> Result<InvoicePayment, PaymentError> {
        use stripe_billing::invoice::RetrieveInvoice;
        use stripe_core::payment_intent::RetrievePaymentIntent;
        let invoice = self
            .retrying("retrieve invoice", || async {
                RetrieveInvoice::new(id)
                    .expand(vec!["confirmation_secret".to_string()])
                    .send(&self.client)
                    .await
            })
            .await?;
        let client_secret = invoice
            .confirmation_secret
            .as_ref()
            .filter(|c| c.type_ == "payment_intent")
            .map(|c| c.client_secret.clone());
        let intent = match client_secret
            .as_deref()
            .and_then(|s| s.split_once("_secret_"))
            .map(|(intent, _)| intent.to_string())
        {
            Some(intent_id) => {
                let pi = self
                    .retrying("retrieve payment intent", || async {
                        RetrievePaymentIntent::new(intent_id.as_str())
                            .send(&self.client)
                            .await
                    })
                    .await?;
                Some(pi)
            }
            None => None,
        };
        use stripe_shared::PaymentIntentStatus as S;
        let stage = match (&invoice.status, &intent) {
            (Some(stripe_shared::InvoiceStatus::Open), Some(pi)) => match &pi.status {
                S::RequiresPaymentMethod => match &pi.last_payment_error {
                    Some(error) => {
                        PaymentStage::Declined(error.message.clone().unwrap_or_default())
                    }
                    None => PaymentStage::NeedsConfirmation,
                },
                S::RequiresAction | S::RequiresConfirmation => PaymentStage::NeedsConfirmation,
                S::Processing | S::RequiresCapture | S::Succeeded => PaymentStage::Processing,
                S::Canceled => PaymentStage::Closed,
                // A status this code does not know is refused, not guessed.
                other => {
                    return Err(PaymentError::Unexpected(format!(
                        "PaymentIntent of invoice {id}: status {other:?}"
                    )))
                }
            },
            (Some(stripe_shared::InvoiceStatus::Open), None) => PaymentStage::Processing,
            (Some(stripe_shared::InvoiceStatus::Paid), _) => PaymentStage::Paid,
            _ => PaymentStage::Closed,
        };
        Ok(InvoicePayment {
            invoice: id.to_string(),
            stage,
            amount_due: invoice.amount_due,
            currency: invoice.currency.to_string(),
            client_secret,
        })
    }

    pub async fn invoice(&self, id: &str) -> Result<InvoiceState, PaymentError> {
        use stripe_billing::invoice::RetrieveInvoice;
        let invoice = self
            .retrying("retrieve invoice", || async {
                RetrieveInvoice::new(id).send(&self.client).await
            })
            .await?;
        invoice_state(invoice)
    }

    /// The card a customer's invoices are charged to at Stripe, if any (None for a deleted
    /// customer).
    pub async fn default_card_of(&self, customer: &str) -> Result<Option<String>, PaymentError> {
        use stripe_core::customer::{RetrieveCustomer, RetrieveCustomerReturned};
        let found = self
            .retrying("retrieve customer", || async {
                RetrieveCustomer::new(customer).send(&self.client).await
            })
            .await?;
        Ok(match found {
            RetrieveCustomerReturned::Customer(c) => c
                .invoice_settings
                .and_then(|s| s.default_payment_method)
                .map(|pm| pm.id().to_string()),
            RetrieveCustomerReturned::DeletedCustomer(_) => None,
        })
    }

    /// The customer a SetupIntent belongs to, when it succeeded.
    pub async fn succeeded_setup_intent(&self, id: &str) -> Result<Option<String>, PaymentError> {
        let intent = self.setup_intent(id).await?;
        Ok(
            (intent.status == stripe_shared::SetupIntentStatus::Succeeded)
                .then(|| intent.customer.map(|c| c.id().to_string()))
                .flatten(),
        )
    }

    /// The customer a payment method is attached to (None once detached).
    pub async fn owner_of_card(
        &self,
        payment_method: &str,
    ) -> Result<Option<String>, PaymentError> {
        let pm = self.payment_method(payment_method).await?;
        Ok(pm.customer.map(|c| c.id().to_string()))
    }

    pub async fn subscription(&self, id: &str) -> Result<SubscriptionState, PaymentError> {
        use stripe_billing::subscription::RetrieveSubscription;
        let id: stripe_shared::SubscriptionId = id.into();
        let sub = self
            .retrying("retrieve subscription", || async {
                RetrieveSubscription::new(id.clone())
                    .send(&self.client)
                    .await
            })
            .await?;
        subscription_state(sub)
    }
}

/// Where an invoice's payment stands, for the customer's part in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentStage {
    /// Waits for the customer: 3-D Secure, or a first payment Stripe leaves to the browser.
    NeedsConfirmation,
    /// The card was declined (Stripe's message); another card is needed.
    Declined(String),
    /// Stripe is collecting it, or no attempt was made yet.
    Processing,
    Paid,
    /// Void, uncollectible, a draft, or a payment cancelled: nothing to confirm.
    Closed,
}

/// An invoice's payment as the payment-confirmation page needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct InvoicePayment {
    pub invoice: String,
    pub stage: PaymentStage,
    /// Smallest currency unit.
    pub amount_due: i64,
    pub currency: String,
    /// For Stripe.js `confirmCardPayment`; never logged (Debug leaves it out).
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for InvoicePayment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvoicePayment")
            .field("invoice", &self.invoice)
            .field("stage", &self.stage)
            .field("amount_due", &self.amount_due)
            .field("currency", &self.currency)
            .finish_non_exhaustive()
    }
}

/// The part of a Stripe invoice the portal keeps as a billing record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceState {
    pub id: String,
    pub customer: Option<String>,
    pub subscription: Option<String>,
    pub number: Option<String>,
    pub status: InvoiceStatus,
    pub currency: String,
    pub subtotal: i64,
    pub tax: i64,
    pub total: i64,
    pub amount_due: i64,
    pub amount_paid: i64,
    /// (Stripe tax rate id, amount)
    pub tax_lines: Vec<(String, i64)>,
    /// The amount each tax line was computed on, in the order of `tax_lines` (None when Stripe
    /// did not say).
    pub taxable: Vec<Option<i64>>,
    /// The invoice's lines (the first page Stripe returns with the invoice).
    pub lines: Vec<InvoiceLine>,
    /// Seconds since the epoch.
    pub period_start: i64,
    pub period_end: i64,
    pub created: i64,
    pub paid_at: Option<i64>,
}

/// One line of a Stripe invoice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InvoiceLine {
    pub amount: i64,
    /// Seconds since the epoch.
    pub period_start: i64,
    pub period_end: i64,
    /// The unused or added time of a plan change.
    pub proration: bool,
    /// The Stripe price billed, when the line is for one.
    pub price: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CustomerAddress {
    pub line1: String,
    pub line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    pub country: String,
}

fn invoice_state(inv: stripe_shared::Invoice) -> Result<InvoiceState, PaymentError> {
    let status = match &inv.status {
        Some(status) => status
            .as_str()
            .parse::<InvoiceStatus>()
            .map_err(|unknown| {
                PaymentError::Unexpected(format!("Stripe invoice {:?}: {unknown}", inv.id))
            })?,
        None => InvoiceStatus::Draft,
    };
    let taxes = inv.total_taxes.unwrap_or_default();
    let taxable = taxes.iter().map(|t| t.taxable_amount).collect();
    let tax_lines: Vec<(String, i64)> = taxes
        .into_iter()
        .map(|t| {
            let rate = t
                .tax_rate_details
                .map(|d| d.tax_rate.id().to_string())
                .unwrap_or_default();
            (rate, t.amount)
        })
        .collect();
    let lines = inv
        .lines
        .data
        .iter()
        .map(|line| InvoiceLine {
            amount: line.amount,
            period_start: line.period.start,
            period_end: line.period.end,
            proration: line.parent.as_ref().is_some_and(|p| {
                p.subscription_item_details
                    .as_ref()
                    .is_some_and(|d| d.proration)
                    || p.invoice_item_details.as_ref().is_some_and(|d| d.proration)
            }),
            price: line
                .pricing
                .as_ref()
                .and_then(|p| p.price_details.as_ref())
                .map(|d| d.price.id().to_string()),
        })
        .collect();
    Ok(InvoiceState {
        id: inv.id.map(|i| i.to_string()).unwrap_or_default(),
        customer: inv.customer.as_ref().map(|c| c.id().to_string()),
        subscription: inv
            .parent
            .as_ref()
            .and_then(|p| p.subscription_details.as_ref())
            .map(|d| d.subscription.id().to_string()),
        number: inv.number,
        status,
        currency: inv.currency.to_string(),
        subtotal: inv.subtotal,
        tax: tax_lines.iter().map(|(_, a)| a).sum(),
        total: inv.total,
        amount_due: inv.amount_due,
        amount_paid: inv.amount_paid,
        tax_lines,
        taxable,
        lines,
        period_start: inv.period_start,
        period_end: inv.period_end,
        created: inv.created,
        paid_at: inv.status_transitions.paid_at,
    })
}

/// A status this code does not know is refused, not guessed: the caller's job is retried and
/// the error logged until the portal learns it.
fn subscription_state(sub: stripe_shared::Subscription) -> Result<SubscriptionState, PaymentError> {
    let status = sub
        .status
        .as_str()
        .parse::<SubscriptionStatus>()
        .map_err(|unknown| {
            PaymentError::Unexpected(format!("Stripe subscription {}: {unknown}", sub.id))
        })?;
    let item = sub.items.data.first();
    Ok(SubscriptionState {
        id: sub.id.to_string(),
        customer: sub.customer.id().to_string(),
        status,
        price_id: item.map(|i| i.price.id.to_string()),
        item_id: item.map(|i| i.id.to_string()),
        tax_rates: item
            .and_then(|i| i.tax_rates.as_ref())
            .map(|rates| rates.iter().map(|r| r.id.to_string()).collect())
            .unwrap_or_default(),
        pending_update: sub.pending_update.is_some(),
        cancel_at_period_end: sub.cancel_at_period_end,
        current_period_end: item.map(|i| i.current_period_end),
        trial_end: sub.trial_end,
        latest_invoice: sub
            .latest_invoice
            .as_ref()
            .and_then(|i| i.id().as_ref())
            .map(|id| id.to_string()),
        metadata: sub.metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// localstripe keeps a subscription in its trial "incomplete" (it has no trialing state), so
    /// the trial is read here from a Stripe object kept in the repository's test data.
    #[test]
    fn a_subscription_in_its_trial_is_read_as_trialing() {
        let text = include_str!("../../tests/data/stripe-subscription-trialing.json");
        let sub: stripe_shared::Subscription =
            miniserde::json::from_str(text).expect("Stripe's subscription object parses");
        let state = subscription_state(sub).unwrap();
        assert_eq!(state.status, SubscriptionStatus::Trialing);
        assert_eq!(state.trial_end, Some(1_764_633_600 + 14 * 86_400));
        assert_eq!(state.current_period_end, state.trial_end);
        assert!(state.status.live() && !state.status.awaiting_first_payment());
        assert!(!state.pending_update);
        assert_eq!(
            state
                .metadata
                .get("portal_subscription")
                .map(String::as_str),
            Some("0193a1b2-0000-7000-8000-000000000001")
        );
    }
}
