//! The Stripe test layer (end2end/stripe-compat.py) leaves every field that localstripe's
//! objects lack null, except the few listed in end2end/stripe-filled-fields.json, which it
//! fills from Stripe's example objects (end2end/stripe-examples.json). This test keeps that
//! list honest against the types the portal reads Stripe's answers with (async-stripe): each
//! example parses, each listed field is one the type requires (null makes it unreadable), so no
//! field is filled that the portal could read as null, and the value filled in is readable.

use serde_json::Value;

const EXAMPLES: &str = include_str!("../../end2end/stripe-examples.json");
const FILLED: &str = include_str!("../../end2end/stripe-filled-fields.json");

/// Whether async-stripe reads `value` as a Stripe object of `kind` (None: a kind the portal
/// never reads with async-stripe).
fn parses(kind: &str, value: &Value) -> Option<bool> {
    use miniserde::json::from_str;
    let text = value.to_string();
    Some(match kind {
        "customer" => from_str::<stripe_shared::Customer>(&text).is_ok(),
        "payment_method" => from_str::<stripe_shared::PaymentMethod>(&text).is_ok(),
        "setup_intent" => from_str::<stripe_shared::SetupIntent>(&text).is_ok(),
        "subscription" => from_str::<stripe_shared::Subscription>(&text).is_ok(),
        "subscription_item" => from_str::<stripe_shared::SubscriptionItem>(&text).is_ok(),
        "invoice" => from_str::<stripe_shared::Invoice>(&text).is_ok(),
        "line_item" => from_str::<stripe_shared::InvoiceLineItem>(&text).is_ok(),
        "tax_rate" => from_str::<stripe_shared::TaxRate>(&text).is_ok(),
        "price" => from_str::<stripe_shared::Price>(&text).is_ok(),
        "plan" => from_str::<stripe_shared::Plan>(&text).is_ok(),
        "charge" => from_str::<stripe_shared::Charge>(&text).is_ok(),
        "payment_intent" => from_str::<stripe_shared::PaymentIntent>(&text).is_ok(),
        _ => return None,
    })
}

/// `value` with the field at `path` ("a.b", "total_taxes[].amount") set to `new`.
fn with_field(value: &Value, path: &str, new: Value) -> Value {
    let mut out = value.clone();
    let mut node = &mut out;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let (key, into_list) = match part.strip_suffix("[]") {
            Some(key) => (key, true),
            None => (*part, false),
        };
        let last = i + 1 == parts.len();
        let map = node.as_object_mut().expect("the path names objects");
        if last && !into_list {
            assert!(
                map.contains_key(key),
                "{path}: no such field in the example"
            );
            map.insert(key.to_string(), new);
            return out;
        }
        node = map
            .get_mut(key)
            .expect("the path names fields of the example");
        if into_list {
            node = node
                .as_array_mut()
                .and_then(|a| a.first_mut())
                .expect("the list has an element");
        }
    }
    out
}

#[test]
fn the_test_layer_fills_only_fields_the_portals_stripe_types_require() {
    let examples: Value = serde_json::from_str(EXAMPLES).unwrap();
    let filled: Value = serde_json::from_str(FILLED).unwrap();
    let resources = examples["resources"].as_object().unwrap();
    for (kind, example) in resources {
        if let Some(ok) = parses(kind, example) {
            assert!(
                ok,
                "Stripe's example {kind} is not readable by async-stripe"
            );
        }
    }
    let mut checked = 0;
    for (kind, fields) in filled["fill"].as_object().unwrap() {
        let example = &resources[kind.as_str()];
        for (path, fill) in fields.as_object().unwrap() {
            assert!(
                fill["why"].as_str().is_some_and(|w| !w.is_empty()),
                "{kind}.{path}: say why it is filled"
            );
            let readable = |value: Value| {
                parses(kind, &with_field(example, path, value))
                    .unwrap_or_else(|| panic!("{kind}: a kind the portal does not read"))
            };
            assert!(
                !readable(Value::Null),
                "{kind}.{path} is filled, but async-stripe reads the {kind} without it: leave it null"
            );
            assert!(
                readable(fill["value"].clone()),
                "{kind}.{path}: async-stripe cannot read the value filled in"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "the list was read");
}
