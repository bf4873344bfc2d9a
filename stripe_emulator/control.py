"""Emulator-only routes under /_emulator/: reset, request log, faults, webhooks, triggers, and
the HTML pages a browser sees (3-D Secure, Connect onboarding).

Bodies may be JSON or form-encoded. Nothing here needs an API key: the server listens on
127.0.0.1 only.
"""

from __future__ import annotations

import html
import json
import re
import threading
from typing import Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import api
from .api import refunds as refunds_api
from .emulator import ApiResult, Emulator
from .errors import StripeError
from .params import parse_body


def _json(status: int, obj) -> ApiResult:
    return ApiResult(status, json.dumps(obj).encode(),
                     {"Content-Type": "application/json"})


def _html(status: int, title: str, body: str) -> ApiResult:
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>body{{font-family:sans-serif;max-width:32em;margin:3em auto}}"
            f"button{{font-size:1.1em;margin:.5em;padding:.5em 1.5em}}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return ApiResult(status, page.encode(), {"Content-Type": "text/html; charset=utf-8"})


def _redirect(url: str, events: list) -> ApiResult:
    return ApiResult(302, b"", {"Location": url, "Content-Type": "text/plain"}, events)


def _with_query(url: str, extra: dict) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _body(headers, body: bytes) -> dict:
    if not body:
        return {}
    if (headers.get("Content-Type") or "").startswith("application/json"):
        data = json.loads(body)
        return data if isinstance(data, dict) else {}
    return parse_body(body)


def _error(err: StripeError, events: Optional[list] = None) -> ApiResult:
    result = _json(err.status, err.body())
    result.events = events or []
    return result


class Control:
    def __init__(self, emulator: Emulator) -> None:
        self.em = emulator
        self._routes = [
            ("GET", r"/_emulator/health", self.health),
            ("POST", r"/_emulator/reset", self.reset),
            ("GET", r"/_emulator/requests", self.requests),
            ("DELETE", r"/_emulator/requests", self.clear_requests),
            ("POST", r"/_emulator/requests/clear", self.clear_requests),
            ("GET", r"/_emulator/faults", self.list_faults),
            ("POST", r"/_emulator/faults", self.arm_fault),
            ("DELETE", r"/_emulator/faults", self.clear_faults),
            ("GET", r"/_emulator/config", self.get_config),
            ("POST", r"/_emulator/config", self.config),
            ("POST", r"/_emulator/webhooks", self.configure_webhooks),
            ("GET", r"/_emulator/webhooks/delivery", self.get_webhook_delivery),
            ("POST", r"/_emulator/webhooks/delivery", self.webhook_delivery),
            ("GET", r"/_emulator/deliveries", self.deliveries),
            ("POST", r"/_emulator/deliveries/([^/]+)/resend", self.resend),
            ("POST", r"/_emulator/charges/([^/]+)/dispute", self.dispute),
            ("GET", r"/_emulator/refunds/config", self.get_refund_config),
            ("POST", r"/_emulator/refunds/config", self.refund_config),
            ("POST", r"/_emulator/refunds/([^/]+)/fail", self.fail_refund),
            ("POST", r"/_emulator/refunds/([^/]+)/settle", self.settle_refund),
            ("GET", r"/_emulator/3ds/([^/]+)", self.three_ds_page),
            ("POST", r"/_emulator/3ds/([^/]+)/(complete|fail)", self.three_ds_action),
            ("GET", r"/_emulator/connect/onboard/([^/]+)", self.onboard_page),
            ("POST", r"/_emulator/connect/onboard/([^/]+)/complete", self.onboard_complete),
            ("POST", r"/_emulator/accounts/([^/]+)/complete_onboarding", self.onboard_account),
            ("POST", r"/_emulator/accounts/([^/]+)/restrict", self.restrict_account),
            ("POST", r"/_emulator/balance/release", self.release_funds),
            ("POST", r"/_emulator/payouts/([^/]+)/settle", self.settle_payout),
            ("POST", r"/_emulator/disputes/([^/]+)/close", self.close_dispute),
        ]
        self._routes = [(m, re.compile("^" + p + "$"), fn) for m, p, fn in self._routes]
        # Refunds of Stripe's refund test cards settle this long after they are created (None:
        # only by POST /_emulator/refunds/{id}/settle). A setting: it survives a reset.
        self.refund_settle_ms: Optional[float] = 200.0
        emulator.state.refund_scheduler = self._schedule_refund  # type: ignore[attr-defined]

    def handle(self, method: str, path: str, query: str, headers, body: bytes) -> ApiResult:
        path = path.rstrip("/") or path
        for m, regex, fn in self._routes:
            match = regex.match(path)
            if match and m == method:
                try:
                    data = _body(headers, body)
                except ValueError:
                    return _json(400, {"error": {"message": "Invalid JSON body."}})
                data.update(dict(parse_qsl(query)))
                try:
                    return fn(data, *match.groups())
                except StripeError as err:
                    return _error(err)
        return _json(404, {"error": {"message": f"Unknown emulator route {method} {path}"}})

    # --- state ---------------------------------------------------------------------------------

    def health(self, data: dict) -> ApiResult:
        return _json(200, {"status": "ok"})

    def reset(self, data: dict) -> ApiResult:
        self.em.reset()
        return _json(200, {"reset": True})

    def requests(self, data: dict) -> ApiResult:
        return _json(200, {"data": self.em.state.requests()})

    def clear_requests(self, data: dict) -> ApiResult:
        self.em.state.request_log.clear()
        return _json(200, {"cleared": True})

    # --- faults --------------------------------------------------------------------------------

    def list_faults(self, data: dict) -> ApiResult:
        return _json(200, {"data": self.em.faults.armed()})

    def arm_fault(self, data: dict) -> ApiResult:
        try:
            fault = self.em.faults.arm(str(data.get("method", "*")), str(data["path"]),
                                       str(data["kind"]), int(data.get("count", 1)),
                                       float(data.get("seconds", 30)))
        except (KeyError, ValueError, TypeError) as exc:
            return _json(400, {"error": {"message": f"Invalid fault: {exc}"}})
        return _json(200, fault.as_dict())

    def clear_faults(self, data: dict) -> ApiResult:
        self.em.faults.clear()
        return _json(200, {"cleared": True})

    def settings(self) -> dict:
        return {"latency_ms": self.em.latency_ms, "search_lag_ms": self.em.search_lag_ms}

    def get_config(self, data: dict) -> ApiResult:
        return _json(200, self.settings())

    def config(self, data: dict) -> ApiResult:
        """Changes ``latency_ms`` and/or ``search_lag_ms``; answers the settings it was sent
        (all of them when it was sent none)."""
        names = [name for name in ("latency_ms", "search_lag_ms") if name in data]
        try:
            values = {name: float(data[name]) for name in names}
            if any(not v >= 0 for v in values.values()):
                raise ValueError("must be 0 or more")
        except (TypeError, ValueError) as exc:
            return _json(400, {"error": {"message": f"Invalid config: {exc}"}})
        if "latency_ms" in values:
            self.em.latency_ms = values["latency_ms"]
        if "search_lag_ms" in values:
            self.em.set_search_lag(values["search_lag_ms"])
        current = self.settings()
        return _json(200, {name: current[name] for name in names} if names else current)

    # --- webhooks ------------------------------------------------------------------------------

    def configure_webhooks(self, data: dict) -> ApiResult:
        options = {}
        for name, cast in (("max_attempts", int), ("backoff", float), ("timeout", float)):
            if name in data:
                options[name] = cast(data[name])
        self.em.configure_webhooks(data.get("url") or None, data.get("secret") or None,
                                   **options)
        hooks = self.em.webhooks
        return _json(200, {"url": hooks.url, "max_attempts": hooks.max_attempts,
                           "backoff": hooks.backoff})

    def get_webhook_delivery(self, data: dict) -> ApiResult:
        return _json(200, self.em.webhooks.delivery_settings())

    def webhook_delivery(self, data: dict) -> ApiResult:
        """Sets delay_ms, jitter, shuffle_window_ms, duplicate_rate, concurrency, seed,
        retry_schedule, retry_compression (those sent; see ``webhooks.py``); answers them all.
        400 for an unknown name or a bad value (nothing changed)."""
        names = set(self.em.webhooks.delivery_settings())
        unknown = sorted(set(data) - names)
        if unknown:
            return _json(400, {"error": {"message": f"Unknown delivery option(s): {unknown}"}})
        try:
            settings = self.em.webhooks.set_delivery(**data)
        except (TypeError, ValueError) as exc:
            return _json(400, {"error": {"message": str(exc)}})
        return _json(200, settings)

    def deliveries(self, data: dict) -> ApiResult:
        return _json(200, {"data": self.em.webhooks.deliveries()})

    def resend(self, data: dict, delivery_id: str) -> ApiResult:
        delivery = self.em.webhooks.resend(delivery_id)
        if delivery is None:
            return _json(404, {"error": {"message": f"No such delivery: '{delivery_id}' (or no "
                                                    f"webhook URL configured)"}})
        return _json(200, delivery)

    # --- triggers ------------------------------------------------------------------------------

    def act(self, action) -> tuple[dict, list]:
        ctx = self.em.context()
        with self.em.state.lock:
            try:
                obj = action(self.em.state, ctx)
            finally:
                self.em.state.search.commit()
        return obj, ctx.events

    def dispute(self, data: dict, charge_id: str) -> ApiResult:
        reason = str(data.get("reason") or "fraudulent")
        obj, events = self.act(lambda st, ctx: api.create_dispute(st, ctx, charge_id, reason))
        result = _json(200, obj)
        result.events = events
        return result

    def _schedule_refund(self, refund_id: str) -> None:
        """Called (under the state lock) when a test card's refund is created."""
        if self.refund_settle_ms is None:
            return
        timer = threading.Timer(self.refund_settle_ms / 1000.0, self._settle_due, (refund_id,))
        timer.daemon = True
        timer.start()

    def _settle_due(self, refund_id: str) -> None:
        try:
            self.em.run(lambda st, ctx: refunds_api.settle_due_refund(st, ctx, refund_id))
        except Exception:  # a timer has no one to answer; never let it crash the thread loudly
            pass

    def get_refund_config(self, data: dict) -> ApiResult:
        return _json(200, {"refund_settle_ms": self.refund_settle_ms})

    def refund_config(self, data: dict) -> ApiResult:
        """``refund_settle_ms``: how long after its creation a refund of 4000000000007726 (or
        4000000000005126) settles; null: only by the settle route."""
        if "refund_settle_ms" in data:
            value = data["refund_settle_ms"]
            if value in (None, "", "null", "none", "manual"):
                self.refund_settle_ms = None
            else:
                try:
                    ms = float(value)
                    if not ms >= 0:
                        raise ValueError("must be 0 or more")
                except (TypeError, ValueError) as exc:
                    return _json(400, {"error": {"message": f"Invalid refund_settle_ms: {exc}"}})
                self.refund_settle_ms = ms
        return _json(200, {"refund_settle_ms": self.refund_settle_ms})

    def settle_refund(self, data: dict, refund_id: str) -> ApiResult:
        """``{"outcome": "succeeded"|"failed", "failure_reason": ...}`` (default: failed only if
        a failure_reason is given, else succeeded)."""
        outcome = str(data.get("outcome") or ("failed" if data.get("failure_reason")
                                                else "succeeded"))
        reason = data.get("failure_reason")
        obj, events = self.act(lambda st, ctx: refunds_api.settle_refund(
            st, ctx, refund_id, outcome, str(reason) if reason else None))
        result = _json(200, obj)
        result.events = events
        return result

    def fail_refund(self, data: dict, refund_id: str) -> ApiResult:
        obj, events = self.act(lambda st, ctx: api.fail_refund(st, ctx, refund_id))
        result = _json(200, obj)
        result.events = events
        return result

    # --- 3-D Secure ----------------------------------------------------------------------------

    def _intent(self, intent_id: str) -> Optional[dict]:
        st = self.em.state
        return st.get("payment_intent", intent_id) or st.get("setup_intent", intent_id)

    def three_ds_page(self, data: dict, intent_id: str) -> ApiResult:
        with self.em.state.lock:
            intent = self._intent(intent_id)
            status = intent["status"] if intent else None
            amount = intent.get("amount") if intent else None
        if intent is None:
            return _html(404, "Unknown payment", f"<p>No such intent: {html.escape(intent_id)}</p>")
        if status != "requires_action":
            return _html(409, "Nothing to authenticate",
                         f"<p>{html.escape(intent_id)} has status {html.escape(status)}.</p>")
        what = (f"a payment of ${amount / 100:.2f} USD" if amount is not None
                else "saving this card for later payments")
        iid = html.escape(intent_id)
        body = (f"<p>Emulated 3-D Secure 2 test page for {what} ({iid}).</p>"
                f"<form method='post' action='/_emulator/3ds/{iid}/complete'>"
                f"<button id='complete' type='submit'>Complete authentication</button></form>"
                f"<form method='post' action='/_emulator/3ds/{iid}/fail'>"
                f"<button id='fail' type='submit'>Fail authentication</button></form>")
        return _html(200, "3D Secure 2 Test Page", body)

    def three_ds_action(self, data: dict, intent_id: str, action: str) -> ApiResult:
        outcome = self.complete_3ds(intent_id, action == "complete")
        if outcome["error"] is not None and outcome["intent"] is None:
            return _error(outcome["error"])
        intent = outcome["intent"]
        return_url = outcome["return_url"]
        if return_url:
            key = intent["object"]  # payment_intent / setup_intent
            url = _with_query(return_url, {
                key: intent["id"], f"{key}_client_secret": intent["client_secret"],
                "redirect_status": "succeeded" if outcome["succeeded"] else "failed",
            })
            return _redirect(url, outcome["events"])
        title = "Authentication complete" if outcome["succeeded"] else "Authentication failed"
        result = _html(200, title, f"<p>{html.escape(intent['id'])}: {intent['status']}</p>")
        result.events = outcome["events"]
        return result

    def complete_3ds(self, intent_id: str, succeed: bool) -> dict:
        """Complete or fail the authentication of an intent in requires_action.

        Returns {intent, return_url, succeeded, events, error}: a decline after authentication
        (4000008260003178) is a failed outcome, not an exception.
        """
        ctx = self.em.context()
        error = None
        with self.em.state.lock:
            intent = self._intent(intent_id)
            if intent is None:
                return {"intent": None, "return_url": None, "succeeded": False, "events": [],
                        "error": StripeError(404, "invalid_request_error",
                                             f"No such intent: '{intent_id}'",
                                             code="resource_missing")}
            next_action = intent["next_action"] or {}
            return_url = (next_action.get("redirect_to_url") or {}).get("return_url")
            try:
                if intent["object"] == "payment_intent":
                    api.complete_pi_authentication(self.em.state, ctx, intent, succeed)
                else:
                    api.complete_si_authentication(self.em.state, ctx, intent, succeed)
            except StripeError as err:
                error = err
            finally:
                self.em.state.search.commit()
            if error is not None and error.status != 402:
                return {"intent": None, "return_url": None, "succeeded": False,
                        "events": ctx.events, "error": error}
            succeeded = intent["status"] in ("succeeded", "requires_capture")
            snapshot = json.loads(json.dumps(intent))
        return {"intent": snapshot, "return_url": return_url, "succeeded": succeeded,
                "events": ctx.events, "error": error}

    # --- Connect onboarding --------------------------------------------------------------------

    def _unusable_link(self, token: str) -> Optional[ApiResult]:
        """A used or expired account link sends the browser to its refresh_url, as Stripe's
        do (the platform then makes a new link); an unknown one is a 404 page."""
        with self.em.state.lock:
            why = api.connect.link_state(self.em.state, token)
            link = self.em.state.account_links.get(token)
        if why is None:
            return None
        if why == "unknown" or link is None:
            return _html(404, "Unknown link", "<p>This onboarding link is not valid.</p>")
        return _redirect(link["refresh_url"], [])

    def onboard_page(self, data: dict, token: str) -> ApiResult:
        refused = self._unusable_link(token)
        if refused is not None:
            return refused
        link = self.em.state.account_links[token]
        tok = html.escape(token)
        body = (f"<p>Emulated Connect onboarding for {html.escape(link['account'])}.</p>"
                f"<form method='post' action='/_emulator/connect/onboard/{tok}/complete'>"
                f"<button id='complete' type='submit'>Complete onboarding</button></form>")
        return _html(200, "Connect onboarding", body)

    def onboard_complete(self, data: dict, token: str) -> ApiResult:
        refused = self._unusable_link(token)
        if refused is not None:
            return refused
        link = self.em.state.account_links[token]

        def complete(st, ctx):
            link["used"] = True  # an account link works once
            return api.complete_onboarding(st, ctx, link["account"])

        _, events = self.act(complete)
        if link.get("return_url"):
            return _redirect(link["return_url"], events)
        result = _html(200, "Onboarding complete", "<p>You can close this page.</p>")
        result.events = events
        return result

    def onboard_account(self, data: dict, account_id: str) -> ApiResult:
        obj, events = self.act(lambda st, ctx: api.complete_onboarding(st, ctx, account_id))
        result = _json(200, obj)
        result.events = events
        return result

    # --- Connect: the account, the balance, payouts, disputes -----------------------------------

    def _act_json(self, action) -> ApiResult:
        obj, events = self.act(action)
        result = _json(200, obj)
        result.events = events
        return result

    def restrict_account(self, data: dict, account_id: str) -> ApiResult:
        """The account loses its capabilities (requirements past due): ``account.updated``."""
        return self._act_json(lambda st, ctx: api.restrict_account(st, ctx, account_id))

    def release_funds(self, data: dict) -> ApiResult:
        """``{"account": "acct_..."}`` (absent: the platform): pending funds available now."""
        account = data.get("account") or None
        if account is not None and self.em.state.get("account", str(account)) is None:
            return _json(404, {"error": {"message": f"No such account: '{account}'"}})
        return self._act_json(lambda st, ctx: api.release_funds(st, ctx, account))

    def settle_payout(self, data: dict, payout_id: str) -> ApiResult:
        """``{"outcome": "paid"|"failed", "failure_code": "account_closed"|...}``."""
        outcome = str(data.get("outcome") or "paid")
        code = data.get("failure_code")
        return self._act_json(lambda st, ctx: api.settle_payout(
            st, ctx, payout_id, outcome, str(code) if code else None))

    def close_dispute(self, data: dict, dispute_id: str) -> ApiResult:
        """``{"outcome": "won"|"lost"}``."""
        outcome = str(data.get("outcome") or "")
        return self._act_json(lambda st, ctx: api.close_dispute(st, ctx, dispute_id, outcome))
