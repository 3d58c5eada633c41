#!/usr/bin/env python3
"""Test tooling: localstripe behind a thin compatibility layer.

localstripe (PyPI) is a real, stateful Stripe-compatible server, but it speaks an older API. This
layer runs it in-process on an internal port and forwards every request to it, and only:

- maps the current API onto localstripe's: prices onto plans (`items[N][price]` is sent as
  `items[N][plan]`, `GET /v1/prices/ID` answers the plan as a price), a tax rate's `country`
  onto its `jurisdiction` and `tax_type` (vat only), refusing what it cannot carry out;
- carries out `payment_behavior=default_incomplete` on a new subscription with localstripe's
  `allow_incomplete`, with one difference said here: Stripe leaves the first invoice's payment
  for the customer to confirm in the browser, localstripe attempts it at once. A card that needs
  3-D Secure ends `requires_action` (the state Stripe reaches once the browser confirms), a
  declined card `requires_payment_method` with its error, any other card paid;
- answers `expand[]=confirmation_secret` on an invoice (localstripe's invoices carry the old
  `payment_intent` instead) with the client secret of localstripe's own PaymentIntent;
- carries out what localstripe does not know of a subscription update with localstripe's own
  calls: `proration_behavior=always_invoice` (create the invoice for the subscription and pay
  it), `payment_behavior=allow_incomplete` (a declined payment: localstripe's renewal-failure
  step, past due) and `pending_if_incomplete` (a declined payment, or one that waits for 3-D
  Secure: the items localstripe held before are put back, the invoice stays open; once the
  customer authenticates that payment, the update is applied, as Stripe applies a pending
  update when its invoice is paid); it refuses, with Stripe's error shape, what
  Stripe refuses (other parameters beside pending_if_incomplete) and what it cannot carry out
  (any other payment_behavior on an update, proration_behavior=none on a price change);
- reshapes localstripe's objects to the current API shapes: the fields of Stripe's own example
  object of the kind (stripe-examples.json beside this file: the kinds the tests meet, taken from
  Stripe's openapi fixtures, MIT, see stripe-examples.LICENSE and scripts/stripe-examples.py)
  that localstripe's object lacks are null, except the few async-stripe requires, filled with the
  values stripe-filled-fields.json lists with their reasons; the ones the portal reads are derived
  from localstripe's real state (an invoice's `total_taxes` and line `pricing`, a subscription
  item's `price`, period and subscription, amounts received and captured);
- sends the webhook events Stripe would send for the state changes localstripe really made
  (it sends few itself), signed with the secret the test registers, like Stripe:
  `POST /_config/webhooks/ID` with `url` and `secret`. They go out after the response to the
  call that caused them, as Stripe's do.

It never answers a Stripe call itself: every object comes from localstripe. An object of a
kind that has no example is passed on as localstripe made it, with a warning on stderr.
Usage: stripe-compat.py [PORT] [--fixtures PATH] [--seed-plans PLANS.toml --write-plans OUT.toml]
PORT defaults to 0 (a port the system chooses); once ready, the layer prints
`stripe-compat: listening on 127.0.0.1:PORT` on stdout with the port it listens on.
With --seed-plans, a price is created for each plan, currency and interval of the portal's plan
file (ids `price_<plan>_<currency>_<month|year>`) and the file is written again with their ids;
`GET /_compat/ready` answers once that is done. `GET /_compat/calls` counts the API requests
(/v1/...) it was sent, for tests that check a page load calls nothing. `POST /_compat/renew/SUB`
runs localstripe's own renewal step for a subscription now (the role of Stripe's test clocks).
`POST /_compat/delay` with `path` and `seconds` makes every later POST to that path wait that long
before it is passed on (a slow network).
"""

import argparse
import asyncio
import contextvars
import copy
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import time
import urllib.parse

from aiohttp import ClientSession, web

import localstripe.resources as resources

# localstripe pickles its whole store to /tmp on every write: slow, and shared between the
# servers that parallel tests start. Each server here keeps its state in memory.
resources.Store.dump_to_disk = lambda self: None
from localstripe.server import app as localstripe_app  # noqa: E402

API_VERSION = "2025-09-30.clover"
# The webhook events a request's handling produced: sent once its response is out, as Stripe
# sends events after it answered the call that caused them.
DEFERRED_EVENTS = contextvars.ContextVar("deferred_events", default=None)
HERE = os.path.dirname(os.path.abspath(__file__))

# What the layer fills in when localstripe's object lacks it, by kind (stripe-filled-fields.json
# beside this file, each field with its value and why that value is true of localstripe's
# objects): only fields the portal's Stripe types (async-stripe) require, without which the
# object could not be read at all. Every other field localstripe lacks is null, never an example's
# value, so a field the portal starts reading is null in the tests, not a made-up value.
# domain/tests/stripe_examples.rs checks that async-stripe requires each field listed.
FILLED_FIELDS = os.path.join(HERE, "stripe-filled-fields.json")


class Compat:
    def __init__(self, fixtures_path):
        with open(fixtures_path) as f:
            self.fixtures = json.load(f)["resources"]
        with open(FILLED_FIELDS) as f:
            self.filled = json.load(f)["fill"]
        self.fixtures_path = fixtures_path
        self.warned = set()  # kinds without an example, reported once each
        self.upstream = None  # http://127.0.0.1:PORT of localstripe
        self.webhooks = {}  # id -> (url, secret)
        self.session = None
        self.ready = False
        self.api_calls = 0  # requests to the Stripe API (/v1/...), for tests that expect none
        self.delays = {}  # path -> seconds a POST to it waits before it is passed on
        # invoice id -> (subscription id, items, quantity) of a pending_if_incomplete update
        # whose payment waits for 3-D Secure
        self.pending_updates = {}

    # ---------- shapes ----------

    def merge(self, example, ours, kind, path):
        """`ours` in the shape of `example` (see `merge_fields`); nested Stripe objects are
        reshaped after their own kind's example."""
        if isinstance(ours, dict) and isinstance(ours.get("object"), str) \
                and ours["object"] != "list":
            return self.reshape(ours)
        return self.merge_fields(example, ours, kind, path)

    def example(self, kind):
        """Stripe's example object of `kind`; None, said loudly, when there is none."""
        if kind in self.fixtures or kind == "list":
            return self.fixtures.get(kind)
        if kind not in self.warned:
            self.warned.add(kind)
            print("stripe-compat: WARNING: no example of a Stripe %r object in %s: it is "
                  "passed on as it is, no field filled in, and may not parse as the current "
                  "API's. Add the kind with scripts/stripe-examples.py."
                  % (kind, os.path.basename(self.fixtures_path)), file=sys.stderr, flush=True)
        return None

    def merge_fields(self, example, ours, kind, path=""):
        """`ours` with every field of Stripe's `example` that it lacks: null, or the value
        stripe-filled-fields.json gives for it. `path` names where `ours` sits in its object of
        `kind` ("invoice_settings", "total_taxes[]"). Metadata is the caller's own: kept as it
        is."""
        if isinstance(ours, dict):
            example = example if isinstance(example, dict) else {}
            out = {}
            for key, value in ours.items():
                field = self.join(path, key)
                out[key] = value if field == "metadata" else self.merge(
                    example.get(key), value, kind, field)
            for key in example:
                if key not in out:
                    fill = self.filled.get(kind, {}).get(self.join(path, key))
                    out[key] = copy.deepcopy(fill["value"]) if fill else None
            return out
        if isinstance(ours, list):
            template = example[0] if isinstance(example, list) and example else None
            return [self.merge(template, item, kind, path + "[]") for item in ours]
        return ours

    @staticmethod
    def join(path, key):
        return key if not path else path + "." + key

    def reshape(self, obj):
        if not isinstance(obj, dict):
            return obj
        kind = obj.get("object")
        fix = getattr(self, "fix_" + str(kind).replace(".", "_"), None)
        if fix:
            obj = fix(dict(obj))
        return self.merge_fields(self.example(kind), obj, kind)

    def plan_as_price(self, plan):
        return {
            "id": plan["id"], "object": "price", "active": plan.get("active", True),
            "billing_scheme": plan.get("billing_scheme", "per_unit"),
            "created": plan.get("created"), "currency": plan.get("currency"),
            "livemode": False, "lookup_key": None, "metadata": plan.get("metadata") or {},
            "nickname": plan.get("nickname"), "product": plan.get("product"),
            "recurring": {"interval": plan.get("interval"),
                          "interval_count": plan.get("interval_count", 1),
                          "meter": None, "usage_type": plan.get("usage_type", "licensed"),
                          "trial_period_days": plan.get("trial_period_days")},
            "tax_behavior": "exclusive", "tiers_mode": plan.get("tiers_mode"),
            "type": "recurring", "unit_amount": plan.get("amount"),
            "unit_amount_decimal": str(plan.get("amount")),
        }

    def fix_list(self, obj):
        obj["data"] = [self.reshape(item) for item in obj.get("data", [])]
        obj.setdefault("has_more", False)
        return obj

    def fix_subscription(self, sub):
        items = sub.get("items") or {}
        data = []
        for item in items.get("data", []):
            item = dict(item)
            item["subscription"] = sub.get("id")
            item["current_period_start"] = sub.get("current_period_start")
            item["current_period_end"] = sub.get("current_period_end")
            data.append(item)
        sub["items"] = dict(items, data=data)
        plan = sub.get("plan") or {}
        sub["currency"] = plan.get("currency", "eur")
        sub["default_tax_rates"] = sub.get("default_tax_rates") or []
        sub["discounts"] = []
        sub.setdefault("collection_method", "charge_automatically")
        # localstripe keeps a subscription in its trial "incomplete": it has no trialing state,
        # and the layer reports the status localstripe holds (the trial is unit-tested on a
        # Stripe object in domain/tests/data instead).
        # Stripe anchors billing at the start of the first paid period (after a trial).
        if sub.get("billing_cycle_anchor") is None:
            sub["billing_cycle_anchor"] = sub.get("trial_end") or sub.get("current_period_start")
        return sub

    def fix_subscription_item(self, item):
        plan = item.get("plan")
        if isinstance(plan, dict):
            item["price"] = self.plan_as_price(plan)
        item["tax_rates"] = [self.reshape(t) if isinstance(t, dict) else t
                             for t in item.get("tax_rates") or []]
        return item

    def fix_plan(self, plan):
        return plan

    def fix_invoice(self, inv):
        lines = inv.get("lines") or {}
        inv["lines"] = dict(lines, data=[self.fix_line(inv, line) for line in lines.get("data", [])])
        inv["total_taxes"] = self.total_taxes(inv)
        subtotal = inv.get("subtotal", 0)
        inv["subtotal_excluding_tax"] = subtotal
        inv["total_excluding_tax"] = subtotal
        inv["amount_remaining"] = max(0, inv.get("amount_due", 0) - inv.get("amount_paid", 0))
        inv["amount_overpaid"] = 0
        inv["number"] = None if inv.get("status") == "draft" else "LS-" + inv["id"][-8:].upper()
        inv["default_tax_rates"] = [self.reshape(t) if isinstance(t, dict) else t
                                    for t in inv.get("default_tax_rates") or []]
        inv["discounts"] = []
        inv["effective_at"] = (inv.get("status_transitions") or {}).get("finalized_at")
        inv["period_start"] = inv.get("period_start") or inv.get("created")
        inv["period_end"] = inv.get("period_end") or inv.get("created")
        inv["attempt_count"] = inv.get("attempt_count", 0)
        return inv

    def total_taxes(self, inv):
        """Stripe's `total_taxes`: one entry per tax rate, with the amount it was computed on.
        localstripe lists one per line and rate, without the taxable amount: they are summed
        per rate, and the taxable amount is the sum of the lines that rate applies to."""
        lines = (inv.get("lines") or {}).get("data", [])
        by_rate = {}
        for entry in inv.get("total_tax_amounts") or []:
            rate = entry["tax_rate"]
            rate_id = rate["id"] if isinstance(rate, dict) else rate
            if rate_id not in by_rate:
                taxable = sum(line.get("amount", 0) for line in lines
                              if any(self.rate_id(t.get("tax_rate")) == rate_id
                                     for t in line.get("tax_amounts") or []))
                by_rate[rate_id] = (dict(entry, amount=0), taxable)
            total, taxable = by_rate[rate_id]
            total["amount"] += entry["amount"]
        return [self.tax_entry(total, taxable) for total, taxable in by_rate.values()]

    @staticmethod
    def rate_id(rate):
        return rate["id"] if isinstance(rate, dict) else rate

    def tax_entry(self, amount, taxable):
        return {
            "amount": amount["amount"], "tax_behavior": "exclusive",
            "tax_rate_details": {"tax_rate": amount["tax_rate"]},
            "taxability_reason": "standard_rated", "taxable_amount": taxable,
            "type": "tax_rate_details",
        }

    def fix_line(self, inv, line):
        line = dict(line)
        plan = line.get("plan") or {}
        line["pricing"] = {
            "type": "price_details",
            "price_details": {"price": plan.get("id"), "product": plan.get("product")},
            "unit_amount_decimal": str(plan.get("amount")) if plan else None,
        }
        line["subtotal"] = line.get("amount", 0)
        line["taxes"] = [self.tax_entry(t, line.get("amount", 0))
                         for t in line.get("tax_amounts") or []]
        if line.get("type") == "subscription":
            line["parent"] = {"type": "subscription_item_details", "invoice_item_details": None,
                              "subscription_item_details": {
                                  "invoice_item": None, "proration": False,
                                  "proration_details": {"credited_items": None},
                                  "subscription": line.get("subscription"),
                                  "subscription_item": line.get("subscription_item")}}
        else:
            line["parent"] = {"type": "invoice_item_details", "subscription_item_details": None,
                              "invoice_item_details": {
                                  "invoice_item": line.get("invoice_item"),
                                  "proration": bool(line.get("proration")),
                                  "proration_details": {"credited_items": None},
                                  "subscription": line.get("subscription")}}
        line["discounts"] = []
        line["discount_amounts"] = []
        line["invoice"] = inv.get("id")
        line["object"] = "line_item"
        return line

    def fix_payment_intent(self, pi):
        """localstripe's `last_payment_error` has no `type`; Stripe's always does. It is derived
        from what localstripe holds: a failed authentication is Stripe's
        `invalid_request_error`, a failed charge (the only other error localstripe records)
        a `card_error`."""
        # Amounts Stripe reports and localstripe does not, from its status.
        status, amount = pi.get("status"), pi.get("amount", 0)
        pi["amount_received"] = amount if status == "succeeded" else 0
        pi["amount_capturable"] = amount if status == "requires_capture" else 0
        error = pi.get("last_payment_error")
        if isinstance(error, dict) and "type" not in error:
            pi["last_payment_error"] = dict(error, type="invalid_request_error"
                                            if error.get("code") == "payment_intent_authentication_failure"
                                            else "card_error")
        return pi

    def fix_charge(self, charge):
        """Stripe's `amount_captured`, from what localstripe holds."""
        charge["amount_captured"] = charge.get("amount", 0) if charge.get("captured") else 0
        return charge

    def fix_tax_rate(self, rate):
        rate["country"] = rate.get("jurisdiction")
        rate["tax_type"] = "vat"
        rate["effective_percentage"] = rate.get("percentage")
        rate["rate_type"] = "percentage"
        rate["jurisdiction_level"] = "country"
        return rate

    def fix_customer(self, cus):
        cus["balance"] = -(cus.get("account_balance") or 0)
        cus["invoice_prefix"] = cus["id"][-8:].upper()
        cus["preferred_locales"] = cus.get("preferred_locales") or []
        cus["tax_exempt"] = "none"
        return cus

    def fix_event(self, evt):
        data = dict(evt.get("data") or {})
        data["object"] = self.reshape(data.get("object"))
        evt["data"] = data
        evt["api_version"] = API_VERSION
        evt["request"] = {"id": None, "idempotency_key": None}
        return evt

    # ---------- requests ----------

    def translate(self, method, path, form):
        """Maps the current API's parameters onto localstripe's. `form` is a list of pairs."""
        out = []
        for key, value in form:
            if key.endswith("[price]"):
                key = key[: -len("[price]")] + "[plan]"
            # Carried out by the reshape (`fix_tax_rate`), or refused (`tax_rate_refusal`).
            if path.startswith("/v1/tax_rates") and key in ("country", "tax_type"):
                continue
            # Carried out by the layer (see `subscription_update`), not by localstripe.
            if path.startswith("/v1/subscriptions/") and key in (
                    "payment_behavior", "proration_behavior"):
                continue
            # See the module's comment: localstripe attempts the payment at once.
            if path == "/v1/subscriptions" and key == "payment_behavior" \
                    and value == "default_incomplete":
                value = "allow_incomplete"
            if path.startswith("/v1/invoices/") and self.is_expand(key) \
                    and value == "confirmation_secret":
                continue
            out.append((key, value))
        return out

    def translate_query(self, path, query):
        """localstripe lists tax rates without the `active` filter (the portal makes only
        active ones)."""
        if path == "/v1/tax_rates":
            pairs = [(k, v) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True) if k != "active"]
            return urllib.parse.urlencode(pairs)
        if path.startswith("/v1/invoices/"):
            # Answered by the layer (`confirmation_secret` below): localstripe has no such field.
            pairs = [(k, v) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)
                     if not (self.is_expand(k) and v == "confirmation_secret")]
            return urllib.parse.urlencode(pairs)
        return query

    @staticmethod
    def is_expand(key):
        """`expand`, `expand[]` or `expand[N]`: the forms clients send the list in."""
        return key == "expand" or key.startswith("expand[")

    def expands_confirmation_secret(self, query, form):
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True) + list(form or [])
        return any(self.is_expand(k) and v == "confirmation_secret" for k, v in pairs)

    def confirmation_secret(self, invoice):
        """An invoice's `confirmation_secret`, from the PaymentIntent localstripe made for it
        (null while it has none, as Stripe's is before finalization)."""
        pi_id = invoice.get("payment_intent")
        if not pi_id:
            return None
        pi = resources.PaymentIntent._api_retrieve(pi_id)
        return {"client_secret": pi.client_secret, "type": "payment_intent"}

    async def forward(self, method, path, query, form, headers):
        url = self.upstream + path + (("?" + query) if query else "")
        body = urllib.parse.urlencode(form) if form is not None else None
        fwd = {k: v for k, v in headers.items()
               if k.lower() in ("authorization", "content-type", "origin")}
        async with self.session.request(method, url, data=body, headers=fwd) as r:
            raw = await r.read()
            out_headers = {k: v for k, v in r.headers.items()
                           if k.lower().startswith("access-control-")}
            return r.status, raw, r.headers.get("Content-Type", ""), out_headers

    async def call(self, method, path, form=None):
        status, raw, _, _ = await self.forward(
            method, path, "", form, {"Authorization": "Bearer sk_test_compat",
                                     "Content-Type": "application/x-www-form-urlencoded"})
        return status, json.loads(raw)

    async def handle(self, request):
        deferred = []
        DEFERRED_EVENTS.set(deferred)
        response = await self.answer(request)
        if deferred:
            await response.prepare(request)
            await response.write_eof()
            for event in deferred:
                await self.deliver(event)
        return response

    async def answer(self, request):
        path = request.path
        if path.startswith("/_config/webhooks/"):
            data = await request.post()
            self.webhooks[request.match_info.get("id") or path.rsplit("/", 1)[1]] = (
                data["url"], data["secret"])
            return web.Response(text="")
        if path == "/_compat/ready":
            return web.Response(text="ready", status=200 if self.ready else 503)
        if path == "/_compat/localstripe-events":
            await self.relay(json.loads(await request.read()))
            return web.Response(text="")
        if path == "/_compat/calls":
            return web.json_response({"calls": self.api_calls})
        if path == "/_compat/delay" and request.method == "POST":
            data = await request.post()
            self.delays[data["path"]] = float(data["seconds"])
            return web.Response(text="")
        if path.startswith("/_compat/renew/") and request.method == "POST":
            return web.json_response(self.reshape(await self.renew(path.rsplit("/", 1)[1])))
        if path.startswith("/v1/"):
            self.api_calls += 1

        method = request.method
        raw_body = await request.read()
        form = None
        original = []
        content_type = request.headers.get("Content-Type", "")
        if method in ("POST", "DELETE") and raw_body:
            if content_type.startswith("application/x-www-form-urlencoded"):
                original = urllib.parse.parse_qsl(raw_body.decode(), keep_blank_values=True)
                form = self.translate(method, path, original)
        query = self.translate_query(path, request.query_string)

        refusal = self.tax_rate_refusal(method, path, original)
        if refusal is not None:
            return refusal
        update = self.subscription_update(method, path, original)
        if isinstance(update, web.Response):
            return update
        if update and "items_before" in update:
            form = self.keep_item_tax_rates(form, update["items_before"])
        if method == "POST" and path in self.delays:
            # A slow network: the request reaches Stripe later, whatever its client does.
            await asyncio.sleep(self.delays[path])

        price = path.startswith("/v1/prices/")
        upstream_path = path.replace("/v1/prices/", "/v1/plans/", 1) if price else path
        if form is None and raw_body:
            status, raw, ctype, extra = await self.forward_raw(
                method, upstream_path, query, raw_body, request.headers)
        else:
            status, raw, ctype, extra = await self.forward(
                method, upstream_path, query, form, request.headers)
        if "json" not in ctype:
            return web.Response(body=raw, status=status, content_type=ctype.split(";")[0] or None,
                                headers=extra)
        body = json.loads(raw)
        if status >= 400:
            print("stripe-compat: %s %s -> %d %s" % (method, path, status, json.dumps(body)), file=sys.stderr)
        if status == 200:
            body = await self.after(method, path, dict(original), body, update)
            if body.get("object") == "invoice" and self.expands_confirmation_secret(
                    request.query_string, original):
                body["confirmation_secret"] = self.confirmation_secret(body)
            body = self.plan_as_price(body) if price else self.reshape(body)
        return web.json_response(body, status=status, headers=extra)

    async def forward_raw(self, method, path, query, raw_body, headers):
        url = self.upstream + path + (("?" + query) if query else "")
        fwd = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type", "origin")}
        async with self.session.request(method, url, data=raw_body, headers=fwd) as r:
            raw = await r.read()
            extra = {k: v for k, v in r.headers.items() if k.lower().startswith("access-control-")}
            if r.status == 200 and "/payment_intents/" in path and path.endswith("/_authenticate"):
                await self.authenticated(path.split("/")[3])
            if r.status == 200 and "/setup_intents/" in path and path.endswith("/confirm"):
                obj = json.loads(raw)
                if obj.get("status") == "succeeded":
                    await self.setup_succeeded(obj)
            return r.status, raw, r.headers.get("Content-Type", ""), extra

    async def setup_succeeded(self, setup_intent):
        """A SetupIntent of a customer that succeeded: Stripe attaches its payment method to
        the customer; localstripe does not, so the layer does it with localstripe's own call.
        Then Stripe's events for both."""
        await self.emit("setup_intent.succeeded", setup_intent)
        pm, customer = setup_intent.get("payment_method"), setup_intent.get("customer")
        if pm and customer:
            status, attached = await self.call("POST", "/v1/payment_methods/%s/attach" % pm,
                                               [("customer", customer)])
            if status == 200:
                await self.emit("payment_method.attached", attached)

    @staticmethod
    def refuse(path, message):
        """A 400 in Stripe's error shape, said on stderr too."""
        print("stripe-compat: refused %s: %s" % (path, message), file=sys.stderr, flush=True)
        return web.json_response({"error": {
            "type": "invalid_request_error", "message": message}}, status=400)

    def tax_rate_refusal(self, method, path, form):
        """localstripe's tax rates have a `jurisdiction` and no `country` or `tax_type`: the
        reshape reports `country` as the jurisdiction and `tax_type` as vat, so a tax rate that
        says otherwise is refused rather than reported wrongly."""
        if not (method == "POST" and path.startswith("/v1/tax_rates")):
            return None
        form = dict(form)
        if "country" in form and form["country"] != form.get("jurisdiction"):
            return self.refuse(path, "stripe-compat: a tax rate's country is carried out only "
                                     "as its jurisdiction (send both, the same)")
        if form.get("tax_type", "vat") != "vat":
            return self.refuse(path, "stripe-compat: only tax_type=vat is carried out")
        return None

    @staticmethod
    def keep_item_tax_rates(form, items_before):
        """Stripe keeps an item's tax rates when its price changes; localstripe makes a new
        item without them. The item's rates as localstripe held them are sent along (unless
        the update sets its own)."""
        if any("[tax_rates]" in key for key, _ in form):
            return form
        prefix = next((key[: -len("[plan]")] for key, _ in form if key.endswith("[plan]")), None)
        if prefix is None or not items_before._list:
            return form
        rates = [rate.id for rate in items_before._list[0].tax_rates or []]
        return form + [("%s[tax_rates][%d]" % (prefix, i), rate) for i, rate in enumerate(rates)]

    # Parameters Stripe accepts on an update with payment_behavior=pending_if_incomplete
    # (Stripe's "pending updates reference"); anything else makes Stripe refuse the request.
    PENDING_UPDATE_PARAMS = ("expand", "payment_behavior", "proration_behavior", "proration_date",
                             "billing_cycle_anchor", "trial_end", "trial_from_plan",
                             "add_invoice_items")
    PENDING_UPDATE_ITEM_FIELDS = ("id", "price", "quantity")

    def subscription_update(self, method, path, form):
        """For POST /v1/subscriptions/ID: what the layer must carry out of `payment_behavior`
        and `proration_behavior` (localstripe knows neither), or a 400 refusal, in Stripe's
        error shape, for what Stripe would refuse or the layer cannot carry out. None for any
        other request."""
        parts = path.strip("/").split("/")
        if not (method == "POST" and len(parts) == 3 and parts[1] == "subscriptions"):
            return None
        form = dict(form)
        payment = form.get("payment_behavior", "allow_incomplete")
        proration = form.get("proration_behavior", "create_prorations")

        def refuse(message):
            return self.refuse(path, message)

        if payment not in ("allow_incomplete", "pending_if_incomplete"):
            return refuse("stripe-compat: payment_behavior=%s on a subscription update is not "
                          "carried out by this test layer" % payment)
        if proration not in ("create_prorations", "always_invoice", "none"):
            return refuse("Invalid proration_behavior: %s" % proration)
        items = {k: v for k, v in form.items() if k.startswith("items[")}
        try:
            sub = resources.Subscription._api_retrieve(parts[2])
        except Exception:  # no such subscription: localstripe answers it, as Stripe would
            return None
        current = sub.items._list[0]
        wanted_plan = next((v for k, v in items.items() if k.endswith("[price]")), None)
        wanted_quantity = next((v for k, v in items.items() if k.endswith("[quantity]")), None)
        changes_price = (wanted_plan is not None and wanted_plan != current.plan.id) or (
            wanted_quantity is not None and int(wanted_quantity) != current.quantity)
        if payment == "pending_if_incomplete":
            for key in form:
                top = key.split("[", 1)[0]
                if top == "items":
                    field = key.rsplit("[", 1)[1].rstrip("]")
                    if field not in self.PENDING_UPDATE_ITEM_FIELDS:
                        return refuse("When payment_behavior is pending_if_incomplete, items "
                                      "accept only price and quantity (got %s)." % key)
                elif top not in self.PENDING_UPDATE_PARAMS:
                    return refuse("When payment_behavior is pending_if_incomplete, %s cannot be "
                                  "updated." % key)
            if changes_price and proration != "always_invoice":
                return refuse("stripe-compat: pending_if_incomplete is carried out only with "
                              "proration_behavior=always_invoice")
        if proration == "none" and changes_price:
            # localstripe always records the unused time of a price change.
            return refuse("stripe-compat: proration_behavior=none on a price change is not "
                          "carried out by this test layer")
        if not changes_price:
            return {"invoice_now": False, "pending": False}
        return {
            "invoice_now": proration == "always_invoice",
            "pending": payment == "pending_if_incomplete",
            # The items as they were, to put back when a pending update's payment fails.
            "items_before": sub.items, "quantity_before": sub.quantity,
        }

    async def after(self, method, path, form, body, update=None):
        """Carries out what the current API does in one call, and announces state changes."""
        parts = path.strip("/").split("/")
        if update is not None:
            if update["invoice_now"]:
                status, invoice = await self.call("POST", "/v1/invoices", [
                    ("customer", body["customer"]), ("subscription", body["id"])])
                if status == 200 and invoice.get("amount_due", 0) > 0:
                    await self.call("POST", "/v1/invoices/%s/pay" % invoice["id"], [])
                    if update["pending"]:
                        await self.after_pending_payment(invoice["id"], body["id"], update)
                    else:
                        await self.after_payment(invoice["id"], body["id"])
                _, body = await self.call("GET", path)
            await self.emit("customer.subscription.updated", body)
        elif method == "POST" and len(parts) == 4 and parts[1] == "payment_methods":
            await self.emit("payment_method." + ("attached" if parts[3] == "attach" else "detached"), body)
        elif method == "POST" and len(parts) == 4 and parts[1] == "setup_intents" \
                and parts[3] == "confirm" and body.get("status") == "succeeded":
            await self.setup_succeeded(body)
        return body

    async def after_payment(self, invoice_id, subscription_id):
        """localstripe pays an invoice it did not make itself without telling the
        subscription when the card is declined; Stripe then makes the subscription past due.
        localstripe's own transition for a failed renewal does exactly that."""
        invoice = resources.Invoice._api_retrieve(invoice_id)
        if invoice.status == "open":
            resources.Subscription._api_retrieve(subscription_id)._on_recurring_payment_failure(invoice)
            status, obj = await self.call("GET", "/v1/invoices/" + invoice_id)
            await self.emit("invoice.payment_failed", obj)

    async def after_pending_payment(self, invoice_id, subscription_id, update):
        """pending_if_incomplete: when the payment failed, Stripe leaves the subscription as it
        was (its items unchanged, its status too) and the invoice open. localstripe has no
        pending updates: its subscription already carries the new item, so the layer puts the
        items localstripe held before back. `pending_update` stays null (localstripe holds no
        such state); the portal reads the item's price."""
        invoice = resources.Invoice._api_retrieve(invoice_id)
        if invoice.status == "open":
            sub = resources.Subscription._api_retrieve(subscription_id)
            if self.waits_for_authentication(invoice):
                # Applied once the customer authenticates the payment (`authenticated`).
                self.pending_updates[invoice_id] = (subscription_id, sub.items, sub.quantity)
            sub.items = update["items_before"]
            sub.quantity = update["quantity_before"]
            await self.announce_unpaid(invoice)

    @staticmethod
    def waits_for_authentication(invoice):
        """The invoice's payment waits for the customer (3-D Secure), as localstripe holds it."""
        if not invoice.payment_intent:
            return False
        return resources.PaymentIntent._api_retrieve(invoice.payment_intent).status \
            == "requires_action"

    async def announce_unpaid(self, invoice):
        """Stripe's event for an invoice whose payment did not go through: it needs the
        customer's authentication, or it failed."""
        _, obj = await self.call("GET", "/v1/invoices/" + invoice.id)
        await self.emit("invoice.payment_action_required" if self.waits_for_authentication(invoice)
                        else "invoice.payment_failed", obj)

    async def authenticated(self, payment_intent_id):
        """After the customer authenticated a payment (localstripe's fake Stripe.js modal): a
        pending update waiting for that invoice is applied, as Stripe does once it is paid."""
        pi = resources.PaymentIntent._api_retrieve(payment_intent_id)
        pending = self.pending_updates.pop(pi.invoice, None) if pi.invoice else None
        if pending is None:
            return
        subscription_id, items, quantity = pending
        if resources.Invoice._api_retrieve(pi.invoice).status != "paid":
            return
        sub = resources.Subscription._api_retrieve(subscription_id)
        sub.items = items
        sub.quantity = quantity
        _, obj = await self.call("GET", "/v1/subscriptions/" + subscription_id)
        await self.emit("customer.subscription.updated", obj)

    async def renew(self, subscription_id):
        """Test helper, in the role of Stripe's test clocks: runs localstripe's own renewal
        step for the subscription now (it invoices the subscription's items and charges the
        default card; a declined charge makes the subscription past due), then announces what
        changed. localstripe renews nothing by itself."""
        sub = resources.Subscription._api_retrieve(subscription_id)
        sub._create_invoice()
        _, obj = await self.call("GET", "/v1/subscriptions/" + subscription_id)
        latest = None
        if sub.latest_invoice:
            _, latest = await self.call("GET", "/v1/invoices/" + sub.latest_invoice)
        if latest is not None:
            await self.emit("invoice.finalized", latest)
            if latest.get("status") == "paid":
                await self.emit("invoice.paid", latest)
            else:
                await self.announce_unpaid(resources.Invoice._api_retrieve(latest["id"]))
        await self.emit("customer.subscription.updated", obj)
        return obj

    # ---------- events ----------

    async def relay(self, event):
        """An event localstripe sent: reshape it and pass it on, with the events Stripe sends
        alongside it for the same change."""
        kind = event.get("type")
        obj = event.get("data", {}).get("object", {})
        await self.emit(kind, obj, event.get("id"))
        if kind == "invoice.payment_succeeded":
            await self.emit("invoice.finalized", obj)
            await self.emit("invoice.paid", obj)
        elif kind == "invoice.payment_failed":
            await self.emit("invoice.finalized", obj)

    async def emit(self, kind, obj, event_id=None):
        if not self.webhooks:
            return
        event = self.reshape({
            "id": event_id or "evt_" + secrets.token_hex(12), "object": "event",
            "created": int(time.time()), "livemode": False, "pending_webhooks": 1,
            "type": kind, "data": {"object": obj},
        })
        deferred = DEFERRED_EVENTS.get()
        if deferred is not None:
            deferred.append(event)
        else:
            await self.deliver(event)

    async def deliver(self, event):
        payload = json.dumps(event).encode()
        for url, secret in list(self.webhooks.values()):
            stamp = int(time.time())
            signature = hmac.new(secret.encode(), b"%d." % stamp + payload, hashlib.sha256).hexdigest()
            try:
                async with self.session.post(url, data=payload, headers={
                        "Content-Type": "application/json; charset=utf-8",
                        "Stripe-Signature": "t=%d,v1=%s" % (stamp, signature)}) as r:
                    await r.read()
            except Exception as e:  # the receiver may be gone at the end of a test
                print("stripe-compat: webhook %s to %s failed: %s" % (event["type"], url, e),
                      file=sys.stderr)


async def seed_plans(compat, source, target):
    """Creates the plan file's prices and writes the file again with their ids."""
    import tomllib
    with open(source, "rb") as f:
        catalog = tomllib.load(f)
    for plan in catalog["plan"]:
        for currency, price in plan["prices"].items():
            for interval, amount in (("month", price["monthly"]), ("year", price["annual"])):
                status, body = await compat.call("POST", "/v1/plans", [
                    ("id", "price_%s_%s_%s" % (plan["id"], currency, interval)),
                    ("amount", str(amount)), ("currency", currency), ("interval", interval),
                    ("product[name]", plan["name"])])
                assert status == 200, body
    out, plan_id = [], None
    with open(source) as f:
        for line in f:
            m = re.match(r'id = "([^"]+)"', line)
            if m:
                plan_id = m.group(1)
            m = re.match(r"(prices\.(\w+) = \{ .*?) \}\s*$", line)
            if m and plan_id:
                cur = m.group(2)
                line = '%s, stripe_monthly = "price_%s_%s_month", stripe_annual = "price_%s_%s_year" }\n' % (
                    m.group(1), plan_id, cur, plan_id, cur)
            out.append(line)
    with open(target, "w") as f:
        f.writelines(out)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int, nargs="?", default=0)
    parser.add_argument("--seed-plans")
    parser.add_argument("--write-plans")
    parser.add_argument("--fixtures", default=os.path.join(HERE, "stripe-examples.json"))
    args = parser.parse_args()

    compat = Compat(args.fixtures)
    compat.session = ClientSession()

    inner = web.AppRunner(localstripe_app)
    await inner.setup()
    inner_site = web.TCPSite(inner, "127.0.0.1", 0)
    await inner_site.start()
    inner_port = inner_site._server.sockets[0].getsockname()[1]
    compat.upstream = "http://127.0.0.1:%d" % inner_port

    outer = web.Application(client_max_size=1 << 20)
    outer.router.add_route("*", "/{tail:.*}", compat.handle)
    runner = web.AppRunner(outer)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    # The port it got (with PORT 0, the system's choice): no other process can take it between
    # choosing and listening.
    port = site._server.sockets[0].getsockname()[1]

    # localstripe announces its own events to the layer, which reshapes and re-signs them.
    from localstripe.webhooks import register_webhook
    register_webhook("compat", "http://127.0.0.1:%d/_compat/localstripe-events" % port,
                     "internal", None)
    if args.seed_plans:
        await seed_plans(compat, args.seed_plans, args.write_plans)
    compat.ready = True
    print("stripe-compat: listening on 127.0.0.1:%d" % port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
