#!/usr/bin/env python3
"""The seed's backend payment flow, against a live LinguaFlex server.

    python test_backend_payment_flow.py [--base-url http://127.0.0.1:8000]

Runs the seed's four steps as the demo student (log in, add a payment method, pay for a gig with
the saved card, find the payment in the list), then the card scenarios of API_CONTRACT.md's
test-card table through process-payment and add-payment-method, and prints a pass/fail table.
Exits 1 when any scenario fails, 2 when the server cannot be reached or the login fails.

Only the standard library and `requests`. Despite its name (the seed's), this is a script, not a
pytest module: pytest's configuration does not collect the repository root, and `__test__ = False`
keeps it out even when a path names it.

Against the local Stripe emulator (`make run` without keys) it also completes 3-D Secure through
the emulator's test page; against real Stripe those two scenarios are skipped (a browser is needed).
Last, teacher payouts (Stripe Connect) as the demo teacher: onboard, complete the emulator's hosted
onboarding page (skipped against real Stripe, like 3-D Secure), check the status, then the demo
student pays for the teacher's gig and the teacher's earnings show it (paid_out grows by the
teacher's 90% share: a destination charge).
The server must run with generous throttle rates: the script makes about 30 payment calls. `make run`
has them (linguaflex/settings/local.py); a server on the contract's rates answers 429, and the script
stops with one line naming THROTTLE_RATES (exit 2).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import requests

__test__ = False  # not a pytest module

TIMEOUT = 60  # seconds per HTTP call
GENEROUS_RATES = "login_email=1000/min,login_ip=1000/min,register=1000/min,payment=1000/min"


class Throttled(Exception):
    """The server answered 429: its throttle rates are too low for this script. Stops the run."""

    def __init__(self, method: str, url: str):
        super().__init__(
            f"HTTP 429 Too Many Requests on {method} {url}: the server's throttle rates are too low for this "
            f"script; restart it with THROTTLE_RATES={GENEROUS_RATES} (make run has such rates)")


def http_request(session: requests.Session, method: str, url: str, **kwargs) -> requests.Response:
    """One HTTP call; a 429 raises Throttled instead of coming back as an answer to check."""
    kwargs.setdefault("timeout", TIMEOUT)
    response = session.request(method, url, **kwargs)
    if response.status_code == 429:
        raise Throttled(method, url)
    return response


# The contract's test cards: number -> (process-payment expectation, add-payment-method expectation).
# An expectation is (HTTP status, error code or None, decline_code or None, brand or None).
CARDS: list[tuple[str, tuple, tuple]] = [
    ("4242424242424242", (200, None, None, "visa"), (200, None, None, "visa")),
    ("4000000000000002", (402, "card_declined", "generic_decline", None), (402, "card_declined", "generic_decline", None)),
    ("4000000000009995", (402, "card_declined", "insufficient_funds", None), (402, "card_declined", "insufficient_funds", None)),
    ("4000000000009987", (402, "card_declined", "lost_card", None), (402, "card_declined", "lost_card", None)),
    ("5555555555554444", (200, None, None, "mastercard"), (200, None, None, "mastercard")),
    ("378282246310005", (200, None, None, "amex"), (200, None, None, "amex")),
    ("4000002500003155", (402, "authentication_required", None, None), (402, "authentication_required", None, None)),
    ("4000000000000341", (402, "card_declined", None, None), (200, None, None, "visa")),
    ("4242424242424241", (400, "invalid_request", None, None), (400, "invalid_request", None, None)),
]


class Skip(Exception):
    """A scenario that does not apply to this server (e.g. 3-D Secure outside the emulator)."""


@dataclass
class Result:
    name: str
    outcome: str  # PASS / FAIL / SKIP
    detail: str
    seconds: float


@dataclass
class Flow:
    base_url: str
    email: str
    password: str
    exp_year: int
    session: requests.Session = field(default_factory=requests.Session)
    token: str = ""
    gig: dict[str, Any] = field(default_factory=dict)
    saved_pm: str = ""
    payment_id: int | None = None
    teacher_email: str = "teacher@example.com"
    teacher_password: str = "password123"
    teacher_token: str = ""
    teacher_id: int | None = None
    connect_account: str = ""
    onboarding_url: str = ""
    results: list[Result] = field(default_factory=list)

    # --- HTTP -----------------------------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None, *, auth: bool = True, token: str | None = None,
             **kwargs) -> requests.Response:
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        token = self.token if token is None else token
        if auth and token:
            headers["Authorization"] = f"Bearer {token}"
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        return http_request(self.session, method, url, json=body, headers=headers, **kwargs)

    def card(self, number: str, **extra) -> dict[str, Any]:
        cvc = "1234" if number.startswith(("34", "37")) else "123"
        return {"card_number": number, "exp_month": 12, "exp_year": self.exp_year, "cvc": cvc,
                "cardholder_name": "Flow Script", **extra}

    # --- bookkeeping ------------------------------------------------------------------------------
    def run(self, name: str, scenario: Callable[[], str]) -> bool:
        started = time.monotonic()
        try:
            detail = scenario() or ""
            outcome = "PASS"
        except Skip as exc:
            outcome, detail = "SKIP", str(exc)
        except AssertionError as exc:
            outcome, detail = "FAIL", str(exc) or "assertion failed"
        except requests.RequestException as exc:
            outcome, detail = "FAIL", f"HTTP error: {exc}"
        except (KeyError, TypeError, ValueError) as exc:
            outcome, detail = "FAIL", f"unexpected answer: {exc!r}"
        self.results.append(Result(name, outcome, detail, time.monotonic() - started))
        return outcome != "FAIL"


def expect(response: requests.Response, status: int, code: str | None = None,
           decline_code: str | None = None) -> dict[str, Any]:
    """The status, the JSON body and, for errors, the contract's envelope with its code."""
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"HTTP {response.status_code}, not JSON: {response.text[:120]!r}") from None
    if response.status_code != status:
        raise AssertionError(f"expected HTTP {status}, got {response.status_code}: {str(body)[:200]}")
    if status >= 400:
        error = body.get("error") or {}
        assert body.get("success") is False, f"error envelope without success: false: {body}"
        assert error.get("code") == code, f"expected code {code!r}, got {error.get('code')!r}"
        assert isinstance(error.get("message"), str) and error["message"], "error without a message"
        if decline_code is not None:
            assert error.get("decline_code") == decline_code, \
                f"expected decline_code {decline_code!r}, got {error.get('decline_code')!r}"
    return body


def describe(expectation: tuple) -> str:
    status, code, decline, brand = expectation
    return " ".join(str(part) for part in (status, code, decline, brand) if part)


# --- the seed's four steps ----------------------------------------------------------------------
def step_login(flow: Flow) -> str:
    body = expect(flow.call("POST", "/accounts/login/", {"email": flow.email, "password": flow.password},
                            auth=False), 200)
    assert body["user"]["role"] == "student", f"{flow.email} is a {body['user']['role']}, not a student"
    flow.token = body["access"]
    gigs = expect(flow.call("GET", "/gigs/?page_size=100"), 200)["results"]
    active = [gig for gig in gigs if gig.get("is_active")]
    assert active, "no active gig to pay for (run manage.py load_demo_data)"
    flow.gig = next((gig for gig in active if gig["price_cents"] == 5000), active[0])
    return f"{flow.email}; gig {flow.gig['id']} ({flow.gig['price']:.2f} {flow.gig['currency'].upper()})"


def step_add_payment_method(flow: Flow) -> str:
    body = expect(flow.call("POST", "/stripe-payments/add-payment-method/",
                            flow.card("4242424242424242", save_for_future=True)), 200)
    assert body["success"] is True and body["saved"] is True, body
    assert body["payment_method_id"].startswith("pm_"), body
    assert (body["card_brand"], body["card_last4"]) == ("visa", "4242"), body
    flow.saved_pm = body["payment_method_id"]
    return f"{flow.saved_pm} visa 4242 saved"


def step_process_payment(flow: Flow) -> str:
    assert flow.saved_pm, "no saved card from step 2"
    body = expect(flow.call("POST", "/stripe-payments/process-payment/",
                            {"gig_id": flow.gig["id"], "saved_payment_method_id": flow.saved_pm}), 200)
    assert body["success"] is True and body["status"] == "succeeded", body
    assert body["amount_cents"] == flow.gig["price_cents"], f"charged {body['amount_cents']} cents"
    assert abs(body["amount"] - flow.gig["price_cents"] / 100) < 1e-9, body["amount"]
    assert body["currency"] == "usd", body["currency"]
    assert isinstance(body["booking_id"], int), "no booking"
    assert body["payment_method_saved"] is True, body
    assert body["payment_intent_id"].startswith("pi_"), body
    flow.payment_id = body["payment_id"]
    return f"payment {body['payment_id']} succeeded, booking {body['booking_id']}"


def step_verify_payments(flow: Flow) -> str:
    assert flow.payment_id, "no payment from step 3"
    page = expect(flow.call("GET", "/stripe-payments/payments/?page_size=100"), 200)
    assert {"count", "next", "previous", "results"} <= set(page), page.keys()
    mine = next((p for p in page["results"] if p["id"] == flow.payment_id), None)
    assert mine is not None, f"payment {flow.payment_id} is not in the list"
    assert mine["status"] == "succeeded", mine["status"]
    assert mine["admin_fee_cents"] + mine["teacher_amount_cents"] == mine["amount_cents"], mine
    fee = (mine["amount_cents"] * 10 * 2 + 100) // 200  # round half up of 10 %
    assert mine["admin_fee_cents"] == fee, f"fee {mine['admin_fee_cents']}, expected {fee}"
    detail = expect(flow.call("GET", f"/stripe-payments/payments/{flow.payment_id}/"), 200)
    assert detail["booking_id"] == mine["booking_id"] and detail["id"] == flow.payment_id, detail
    return f"listed, succeeded, fee {mine['admin_fee_cents']} + teacher {mine['teacher_amount_cents']} cents"


# --- card scenarios -----------------------------------------------------------------------------
def scenario_process(flow: Flow, number: str, expectation: tuple) -> Callable[[], str]:
    status, code, decline, brand = expectation

    def run() -> str:
        response = flow.call("POST", "/stripe-payments/process-payment/",
                             {"gig_id": flow.gig["id"], "card_details": flow.card(number)})
        body = expect(response, status, code, decline)
        if status == 200:
            assert body["status"] == "succeeded" and body["card_brand"] == brand, body
            assert isinstance(body["booking_id"], int), "no booking"
            return f"payment {body['payment_id']}, {brand} {body['card_last4']}"
        error = body["error"]
        if status == 402:
            assert isinstance(error.get("payment_id"), int), "no payment_id in the 402"
            detail = expect(flow.call("GET", f"/stripe-payments/payments/{error['payment_id']}/"), 200)
            assert detail["booking_id"] is None, "a refused card left a booking"
            if code == "authentication_required":
                assert str(error.get("redirect_url", "")).startswith("http"), "no redirect_url"
                assert error.get("client_secret"), "no client_secret"
                return f"redirect_url {error['redirect_url'][:60]}"
            return f"{code}/{error.get('decline_code')}; payment {error['payment_id']} {detail['status']}, no booking"
        assert "card_number" in (error.get("fields", {}).get("card_details") or {}), error
        assert "payment_id" not in error, "a payment was recorded for a card refused locally"
        return "fields.card_details.card_number"

    return run


def scenario_add(flow: Flow, number: str, expectation: tuple) -> Callable[[], str]:
    status, code, decline, brand = expectation

    def run() -> str:
        body = expect(flow.call("POST", "/stripe-payments/add-payment-method/",
                                flow.card(number, save_for_future=True)), status, code, decline)
        if status == 200:
            assert body["saved"] is True and body["card_brand"] == brand, body
            assert body["card_last4"] == number[-4:], body
            assert body["exp_year"] == flow.exp_year and body["exp_month"] == 12, body
            return f"{body['payment_method_id']} {brand} saved"
        error = body["error"]
        if code == "authentication_required":
            assert error.get("setup_intent_id", "").startswith("seti_"), error
            assert str(error.get("redirect_url", "")).startswith("http"), error
            return f"setup_intent {error['setup_intent_id']}"
        if status == 400:
            assert "card_number" in error.get("fields", {}), error
            return "fields.card_number"
        return f"{code}/{error.get('decline_code')}"

    return run


def scenario_verify_only(flow: Flow) -> str:
    body = expect(flow.call("POST", "/stripe-payments/add-payment-method/",
                            flow.card("5555555555554444", save_for_future=False)), 200)
    assert body["saved"] is False and body["payment_method_id"].startswith("pm_"), body
    return f"{body['payment_method_id']} verified, not kept"


def scenario_charge_saved_0341(flow: Flow) -> str:
    added = expect(flow.call("POST", "/stripe-payments/add-payment-method/",
                             flow.card("4000000000000341", save_for_future=True)), 200)
    body = expect(flow.call("POST", "/stripe-payments/process-payment/",
                            {"gig_id": flow.gig["id"], "saved_payment_method_id": added["payment_method_id"]}),
                  402, "card_declined")
    return f"saved {added['payment_method_id']}, charge refused: {body['error'].get('decline_code')}"


def _emulator_3ds(redirect_url: str, complete: bool) -> str:
    """Press the emulator's Complete or Fail button; return where Stripe sends the browser."""
    if "/_emulator/3ds/" not in redirect_url:
        raise Skip("3-D Secure needs a browser outside the local emulator")
    page = http_request(requests.Session(), "GET", redirect_url)
    assert page.status_code == 200 and "3D Secure" in page.text, f"3-D Secure page: HTTP {page.status_code}"
    action = redirect_url.rstrip("/") + ("/complete" if complete else "/fail")
    answer = http_request(requests.Session(), "POST", action, allow_redirects=False)
    assert answer.status_code == 302, f"the emulator answered {answer.status_code}, not a redirect"
    return answer.headers["Location"]


def scenario_3ds_payment(flow: Flow, complete: bool) -> Callable[[], str]:
    def run() -> str:
        body = expect(flow.call("POST", "/stripe-payments/process-payment/",
                                {"gig_id": flow.gig["id"], "card_details": flow.card("4000002500003155")}),
                      402, "authentication_required")
        error = body["error"]
        location = _emulator_3ds(error["redirect_url"], complete)
        assert "/stripe-payments/payment-return/" in location, f"redirected to {location}"
        returned = expect(flow.call("GET", location, auth=False), 200)
        payment = expect(flow.call("GET", f"/stripe-payments/payments/{error['payment_id']}/"), 200)
        if complete:
            assert returned["success"] is True and returned["status"] == "succeeded", returned
            assert isinstance(returned["booking_id"], int), returned
            assert payment["status"] == "succeeded" and payment["booking_id"] == returned["booking_id"], payment
            return f"payment {error['payment_id']} succeeded after 3-D Secure, booking {returned['booking_id']}"
        assert returned["success"] is False and returned["status"] == "failed", returned
        assert payment["status"] == "failed" and payment["booking_id"] is None, payment
        return f"payment {error['payment_id']} failed, no booking"

    return run


def scenario_3ds_card(flow: Flow) -> str:
    body = expect(flow.call("POST", "/stripe-payments/add-payment-method/",
                            flow.card("4000002500003155", save_for_future=True)), 402, "authentication_required")
    location = _emulator_3ds(body["error"]["redirect_url"], True)
    returned = expect(flow.call("GET", location, auth=False), 200)
    assert returned["success"] is True and returned["payment_method_id"], returned
    saved = expect(flow.call("GET", "/stripe-payments/payment-methods/?page_size=100"), 200)["results"]
    assert returned["payment_method_id"] in [card["payment_method_id"] for card in saved], "the card was not saved"
    paid = expect(flow.call("POST", "/stripe-payments/process-payment/",
                            {"gig_id": flow.gig["id"], "saved_payment_method_id": returned["payment_method_id"]}), 200)
    return f"saved {returned['payment_method_id']} after 3-D Secure; charged off-session: payment {paid['payment_id']}"


# --- teacher payouts (Stripe Connect) -------------------------------------------------------------
def _teacher(flow: Flow) -> None:
    """Log in the demo teacher once (their own token; the student's stays in flow.token)."""
    if flow.teacher_token:
        return
    body = expect(flow.call("POST", "/accounts/login/", {"email": flow.teacher_email, "password": flow.teacher_password},
                            auth=False), 200)
    assert body["user"]["role"] == "teacher", f"{flow.teacher_email} is a {body['user']['role']}, not a teacher"
    flow.teacher_token, flow.teacher_id = body["access"], body["user"]["id"]


def _onboard(flow: Flow) -> dict[str, Any]:
    body = expect(flow.call("POST", "/stripe-payments/connect/onboard/", token=flow.teacher_token), 200)
    assert str(body["account_id"]).startswith("acct_"), body
    assert str(body["onboarding_url"]).startswith("http"), body
    return body


def scenario_connect_onboard(flow: Flow) -> str:
    _teacher(flow)
    before = expect(flow.call("GET", "/stripe-payments/connect/status/", token=flow.teacher_token), 200)
    assert {"account_id", "charges_enabled", "payouts_enabled", "requirements_due"} <= set(before), before
    if before["account_id"] is None:
        assert (before["charges_enabled"], before["payouts_enabled"], before["requirements_due"]) == (False, False, []), before
    first = _onboard(flow)
    if before["account_id"] is not None:
        assert first["account_id"] == before["account_id"], f"a new account {first['account_id']} for an onboarded teacher"
    again = _onboard(flow)
    assert again["account_id"] == first["account_id"], f"second onboard answered {again['account_id']}"
    flow.connect_account, flow.onboarding_url = again["account_id"], again["onboarding_url"].rstrip("/")
    state = "new account" if before["account_id"] is None else "already onboarded before"
    return f"{flow.connect_account} ({state}); the same account_id again"


def scenario_connect_complete(flow: Flow) -> str:
    assert flow.onboarding_url, "no onboarding_url from the onboard scenario"
    if "/_emulator/connect/onboard/" not in flow.onboarding_url:
        raise Skip("Stripe's hosted onboarding needs a browser outside the local emulator")
    page = http_request(requests.Session(), "GET", flow.onboarding_url)
    assert page.status_code == 200 and "onboarding" in page.text.lower(), f"onboarding page: HTTP {page.status_code}"
    answer = http_request(requests.Session(), "POST", flow.onboarding_url + "/complete", allow_redirects=False)
    assert answer.status_code == 302, f"the emulator answered {answer.status_code}, not a redirect"
    location = answer.headers["Location"]
    assert "/stripe-payments/connect/return/?token=" in location, f"redirected to {location}"
    returned = expect(flow.call("GET", location, auth=False), 200)
    assert returned["account_id"] == flow.connect_account, returned
    assert returned["onboarding_complete"] is True and returned["details_submitted"] is True, returned
    assert returned["charges_enabled"] is True and returned["payouts_enabled"] is True, returned
    return "302 to the return URL; onboarding_complete, charges and payouts enabled"


def scenario_connect_status(flow: Flow) -> str:
    _teacher(flow)
    status = expect(flow.call("GET", "/stripe-payments/connect/status/", token=flow.teacher_token), 200)
    assert status["account_id"] == flow.connect_account, status
    if "/_emulator/connect/onboard/" in flow.onboarding_url:
        assert status["charges_enabled"] is True and status["payouts_enabled"] is True, status
        assert status["requirements_due"] == [], status
    return (f"charges_enabled {status['charges_enabled']}, payouts_enabled {status['payouts_enabled']}, "
            f"requirements_due {status['requirements_due']}")


def scenario_connect_earnings(flow: Flow) -> str:
    _teacher(flow)
    gigs = expect(flow.call("GET", f"/gigs/?page_size=100&teacher={flow.teacher_id}"), 200)["results"]
    active = [gig for gig in gigs if gig.get("is_active")]
    assert active, "the demo teacher has no active gig"
    gig = next((g for g in active if g["price_cents"] == 5000), active[0])
    status = expect(flow.call("GET", "/stripe-payments/connect/status/", token=flow.teacher_token), 200)
    before = expect(flow.call("GET", "/stripe-payments/earnings/", token=flow.teacher_token), 200)["totals"]
    paid = expect(flow.call("POST", "/stripe-payments/process-payment/",
                            {"gig_id": gig["id"], "card_details": flow.card("4242424242424242")}), 200)
    assert paid["status"] == "succeeded" and paid["amount_cents"] == gig["price_cents"], paid
    fee = (gig["price_cents"] * 10 * 2 + 100) // 200
    share = gig["price_cents"] - fee
    after = expect(flow.call("GET", "/stripe-payments/earnings/", token=flow.teacher_token), 200)
    totals = after["totals"]
    delta = {key: totals[f"{key}_cents"] - before[f"{key}_cents"]
             for key in ("gross", "platform_fee", "refunded", "net", "paid_out", "owed")}
    assert delta["gross"] == gig["price_cents"], f"gross grew by {delta['gross']}, not {gig['price_cents']}"
    assert delta["platform_fee"] == fee and delta["net"] == share and delta["refunded"] == 0, delta
    assert totals["net_cents"] == totals["paid_out_cents"] + totals["owed_cents"], totals
    assert abs(totals["paid_out"] - totals["paid_out_cents"] / 100) < 1e-9, totals
    assert after["months"] and all(len(m["month"]) == 7 for m in after["months"]), after["months"]
    if status["payouts_enabled"]:
        assert delta["paid_out"] == share and delta["owed"] == 0, f"not a destination charge: {delta}"
        where = "paid_out"
    else:
        assert delta["owed"] == share and delta["paid_out"] == 0, delta
        where = "owed (not onboarded)"
    return (f"payment {paid['payment_id']} of {gig['price_cents'] / 100:.2f}: gross +{delta['gross'] / 100:.2f}, "
            f"fee +{fee / 100:.2f}, {where} +{share / 100:.2f} (paid_out now {totals['paid_out']:.2f})")


def scenario_connect_roles(flow: Flow) -> str:
    expect(flow.call("POST", "/stripe-payments/connect/onboard/"), 403, "permission_denied")
    expect(flow.call("GET", "/stripe-payments/earnings/", auth=False), 401, "not_authenticated")
    return "student onboard 403 permission_denied; anonymous earnings 401 not_authenticated"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the seed's payment flow against a live LinguaFlex server.")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--email", default="student@example.com")
    parser.add_argument("--password", default="password123")
    parser.add_argument("--exp-year", type=int, default=2030, help="a future expiry year for the test cards")
    parser.add_argument("--teacher-email", default="teacher@example.com", help="the teacher of the payout scenarios")
    parser.add_argument("--teacher-password", default="password123")
    args = parser.parse_args(argv)
    flow = Flow(base_url=args.base_url.rstrip("/"), email=args.email, password=args.password, exp_year=args.exp_year,
                teacher_email=args.teacher_email, teacher_password=args.teacher_password)

    try:
        flow.call("GET", "/health/", auth=False).raise_for_status()
    except requests.RequestException as exc:
        print(f"Cannot reach {flow.base_url}/health/: {exc}", file=sys.stderr)
        return 2
    except Throttled as exc:
        print(exc, file=sys.stderr)
        return 2

    print(f"LinguaFlex payment flow against {flow.base_url}\n")
    try:
        return run_scenarios(flow)
    except Throttled as exc:
        if flow.results:
            print_table(flow.results)
        print(exc, file=sys.stderr)
        return 2


def run_scenarios(flow: Flow) -> int:
    if not flow.run("1. login as the demo student, find the gig", lambda: step_login(flow)):
        print_table(flow.results)
        return 2
    flow.run("2. add payment method 4242 (saved)", lambda: step_add_payment_method(flow))
    flow.run("3. process payment with the saved card", lambda: step_process_payment(flow))
    flow.run("4. verify the payments list", lambda: step_verify_payments(flow))
    for number, through_payment, _ in CARDS:
        flow.run(f"process-payment {number} -> {describe(through_payment)}",
                 scenario_process(flow, number, through_payment))
    for number, _, through_add in CARDS:
        flow.run(f"add-payment-method {number} -> {describe(through_add)}", scenario_add(flow, number, through_add))
    flow.run("add-payment-method save_for_future=false -> verified, not saved", lambda: scenario_verify_only(flow))
    flow.run("saved 4000000000000341 charged later -> 402 card_declined", lambda: scenario_charge_saved_0341(flow))
    flow.run("3-D Secure payment completed -> succeeded + booking", scenario_3ds_payment(flow, True))
    flow.run("3-D Secure payment failed -> failed, no booking", scenario_3ds_payment(flow, False))
    flow.run("3-D Secure card saved after authentication, charged later", lambda: scenario_3ds_card(flow))
    if flow.run("payouts: teacher onboards -> account_id (the same again)", lambda: scenario_connect_onboard(flow)):
        flow.run("payouts: emulator onboarding page completed -> return JSON complete",
                 lambda: scenario_connect_complete(flow))
        flow.run("payouts: status -> charges and payouts enabled", lambda: scenario_connect_status(flow))
    flow.run("payouts: student pays the teacher's gig -> earnings paid_out + share",
             lambda: scenario_connect_earnings(flow))
    flow.run("payouts: student onboard 403, anonymous earnings 401", lambda: scenario_connect_roles(flow))
    print_table(flow.results)
    return 1 if any(result.outcome == "FAIL" for result in flow.results) else 0


def print_table(results: list[Result]) -> None:
    width = max(len(result.name) for result in results)
    print(f"{'scenario':<{width}}  result  time   detail")
    print(f"{'-' * width}  ------  -----  {'-' * 40}")
    for result in results:
        print(f"{result.name:<{width}}  {result.outcome:<6}  {result.seconds:4.1f}s  {result.detail}")
    counts = {outcome: sum(1 for r in results if r.outcome == outcome) for outcome in ("PASS", "FAIL", "SKIP")}
    print(f"\n{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")


if __name__ == "__main__":
    sys.exit(main())
