#!/usr/bin/env python3
"""Makes end2end/stripe-examples.json: Stripe's example object of each kind the Stripe test
tooling meets, taken from Stripe's openapi fixtures (github.com/stripe/openapi, file
openapi/fixtures3.json; MIT license, kept in end2end/stripe-examples.LICENSE).

Run it by hand, never at build or test time (the fixtures file is not part of the repository):

    python3 scripts/stripe-examples.py PATH/TO/fixtures3.json > end2end/stripe-examples.json

KINDS are the `object` kinds the tests meet (see the comments there). When the layer meets a
kind that is missing here, stripe-compat.py says so on stderr: add it to KINDS and run this
again.
"""

import json
import sys

KINDS = [
    # What localstripe returned to stripe-compat.py in the server tests (the kinds the layer
    # looked up, recorded over `cargo test -p server --test billing --test webhooks`), and the
    # prices the layer derives from plans.
    "customer", "payment_method", "setup_intent", "subscription", "subscription_item",
    "invoice", "line_item", "tax_rate", "plan", "price", "charge",
    # The payment of an invoice the customer confirms in the browser (3-D Secure).
    "payment_intent",
    # localstripe announces the products the test plans are made with (`product.created`).
    "product",
    # Nested in those examples (a subscription's or charge's `transfer_data.destination`, a
    # charge's `source`): the layer reshapes them too when it reshapes an object twice (list
    # items, an event's object).
    "account", "source",
    # server/tests/webhooks.rs builds its events from these (and subscription, invoice, charge).
    "event",
]

SOURCE = ("Stripe's example objects from https://github.com/stripe/openapi "
          "(openapi/fixtures3.json), kinds listed in scripts/stripe-examples.py")
LICENSE = ("MIT License, Copyright (c) 2011- Stripe, Inc. (https://stripe.com); "
           "full notice in stripe-examples.LICENSE beside this file")


def main():
    with open(sys.argv[1]) as f:
        resources = json.load(f)["resources"]
    missing = [k for k in KINDS if k not in resources]
    if missing:
        sys.exit("no example for: " + ", ".join(missing))
    out = {"_source": SOURCE, "_license": LICENSE,
           "resources": {k: resources[k] for k in sorted(KINDS)}}
    json.dump(out, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
