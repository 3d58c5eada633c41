//! POST /webhooks/stripe: Stripe's events. Exempt from the Origin check; the signature stands
//! in for it. Verified, recorded once and answered at once; the work runs as a job.

use crate::state::AppState;
use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use domain::billing::webhooks::{self, Receipt};

pub async fn stripe(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(gateway) = state.portal.payments.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Replay protection is about real time, not the portal's (injectable) business clock.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Err(reason) = webhooks::verify(&body, signature, &gateway.config.webhook_secret, now) {
        tracing::warn!(%reason, request_id, "stripe webhook refused");
        return (StatusCode::BAD_REQUEST, "invalid signature").into_response();
    }
    let event = match webhooks::parse(&body) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, request_id, "stripe webhook with a body that is not an event");
            return (StatusCode::BAD_REQUEST, "not an event").into_response();
        }
    };
    match webhooks::receive(&state.portal, &event).await {
        Ok(Receipt::New { queued: false }) => {
            tracing::info!(event = %event.id, kind = %event.kind, "stripe event acknowledged, not acted on")
        }
        Ok(Receipt::New { queued: true }) | Ok(Receipt::Duplicate) => {}
        Err(error) => {
            // Stripe delivers again later.
            tracing::error!(%error, event = %event.id, "could not record a stripe event");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    (StatusCode::OK, "ok").into_response()
}
