#!/usr/bin/env python3
"""Writes N distinct, signed Stripe webhook events (one per line: signature TAB body) for
bench/webhooks.lua. Signed now: use them within Stripe's 300-second tolerance."""
import hashlib, hmac, json, sys, time

count, secret, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
stamp = int(time.time())
kinds = ["customer.subscription.updated", "invoice.paid", "invoice.payment_failed", "payment_method.attached"]
objects = {"customer.subscription.updated": "subscription", "invoice.paid": "invoice",
           "invoice.payment_failed": "invoice", "payment_method.attached": "payment_method"}
prefix = {"subscription": "sub_", "invoice": "in_", "payment_method": "pm_"}
with open(out, "w") as f:
    for i in range(count):
        kind = kinds[i % len(kinds)]
        obj = objects[kind]
        body = json.dumps({
            "id": "evt_bench_%d_%d" % (stamp, i), "object": "event", "type": kind,
            "created": stamp, "livemode": False, "pending_webhooks": 1, "api_version": "2025-09-30.clover",
            "data": {"object": {"id": "%sbench%d" % (prefix[obj], i), "object": obj}},
        }, separators=(",", ":"))
        signature = hmac.new(secret.encode(), b"%d.%s" % (stamp, body.encode()), hashlib.sha256).hexdigest()
        f.write("t=%d,v1=%s\t%s\n" % (stamp, signature, body))
