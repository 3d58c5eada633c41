#!/usr/bin/env python3
"""Test tooling: a small stand-in for the EU's VIES REST service (no public test instance is
reachable from the tests). It answers `POST /check-vat-number` in the shape of VIES's REST API
from a table of numbers, so the portal's client meets each answer VIES gives:

- a valid number: 200 with `valid: true`, `requestDate`, the trader's `name` and `address`, and a
  `requestIdentifier` when the request names a requester (`requesterMemberStateCode` and
  `requesterNumber`), as VIES does;
- an invalid number: 200 with `valid: false` and `name`/`address` "---";
- VIES's errors (`MS_UNAVAILABLE`, `MS_MAX_CONCURRENT_REQ`, `TIMEOUT`, `INVALID_INPUT`,
  `SERVICE_UNAVAILABLE`): `{"actionSucceed": false, "errorWrappers": [{"error": CODE, ...}]}`;
- a number that makes the service slow: it answers (valid) after 30 seconds, past any sensible
  client timeout.

Numbers not in the table are invalid. `POST /_vies/answer` with `number` (country prefix
included, e.g. DE811907980) and `answer` (valid, invalid, slow or an error code) changes the
table while it runs; `GET /_vies/requests` lists the requests received (JSON), for tests.
Usage: vies-server.py [PORT]; PORT 0 (the default) lets the system choose, and the server prints
`vies-server: listening on 127.0.0.1:PORT` once ready.
"""

import asyncio
import json
import secrets
import sys
import time

from aiohttp import web

TABLE = {
    "DE811907980": "valid",
    "FR40303265045": "valid",
    "NL004495445B01": "valid",
    "DE123456788": "invalid",
    "BE0000000196": "MS_UNAVAILABLE",
    "ES00000000T": "MS_MAX_CONCURRENT_REQ",
    "IT00000000000": "TIMEOUT",
    "PL0000000000": "INVALID_INPUT",
    "SE000000000001": "SERVICE_UNAVAILABLE",
    "DK00000000": "slow",
}

TRADERS = {
    "DE811907980": ("Beispiel GmbH", "Musterstrasse 1\n10115 Berlin"),
    "FR40303265045": ("Exemple SAS", "1 rue de Rivoli\n75001 Paris"),
    "NL004495445B01": ("Voorbeeld B.V.", "Damrak 1\n1012 LG Amsterdam"),
}

requests = []


def today():
    return time.strftime("%Y-%m-%d", time.gmtime())


async def check(request):
    try:
        body = json.loads(await request.read())
        country = body["countryCode"]
        number = body["vatNumber"]
    except (ValueError, KeyError, TypeError):
        return error("INVALID_INPUT", status=400)
    requests.append(body)
    full = country + number
    answer = TABLE.get(full, "invalid")
    if answer == "slow":
        await asyncio.sleep(30)
        answer = "valid"
    if answer not in ("valid", "invalid"):
        return error(answer)
    name, address = TRADERS.get(full, ("---", "---")) if answer == "valid" else ("---", "---")
    out = {
        "countryCode": country,
        "vatNumber": number,
        "requestDate": today() + "T00:00:00.000Z",
        "valid": answer == "valid",
        "requestIdentifier": "",
        "name": name,
        "address": address,
        "traderName": "---",
        "traderStreet": "---",
        "traderPostalCode": "---",
        "traderCity": "---",
        "traderCompanyType": "---",
        "traderNameMatch": "NOT_PROCESSED",
        "traderStreetMatch": "NOT_PROCESSED",
        "traderPostalCodeMatch": "NOT_PROCESSED",
        "traderCityMatch": "NOT_PROCESSED",
        "traderCompanyTypeMatch": "NOT_PROCESSED",
    }
    if body.get("requesterMemberStateCode") and body.get("requesterNumber"):
        out["requestIdentifier"] = "WAPIAAAA" + secrets.token_hex(4).upper()
    return web.json_response(out)


def error(code, status=200):
    return web.json_response({
        "actionSucceed": False,
        "errorWrappers": [{"error": code, "message": None}],
    }, status=status)


async def set_answer(request):
    data = await request.post()
    TABLE[data["number"]] = data["answer"]
    return web.Response(text="")


async def list_requests(request):
    return web.json_response(requests)


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    app = web.Application()
    app.router.add_post("/check-vat-number", check)
    app.router.add_post("/_vies/answer", set_answer)
    app.router.add_get("/_vies/requests", list_requests)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print("vies-server: listening on 127.0.0.1:%d" % port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
