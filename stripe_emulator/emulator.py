"""The emulator's core, independent of HTTP: routing, auth, idempotency, faults, expansion.

``Emulator.handle_api`` takes a parsed /v1 request and returns an :class:`ApiResult`; the HTTP
server in ``server.py`` writes it, then hands the result's events to the webhook dispatcher.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from . import api, objects
from .api import ACCOUNT_SCOPED
from .errors import StripeError, invalid
from .faults import FaultTable
from .idempotency import CONFLICT, IN_USE, NEW, REPLAY, applies, key_error
from .params import check_unknown, get_list, parse_body, parse_query
from .store import Context, State
from .webhooks import Dispatcher

_ID = r"([^/]+)"


@dataclass
class ApiResult:
    status: int
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    drop: bool = False  # close the connection without answering
    refuse: bool = False  # reset the connection at once (SO_LINGER 0), without answering
    cut: bool = False  # send the head and half the body, then reset the connection


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _error(err: StripeError) -> bytes:
    return _json(err.body())


class Emulator:
    def __init__(self, *, webhook_url: Optional[str] = None, webhook_secret: Optional[str] = None,
                 latency_ms: float = 0, clock: Callable[[], float] = time.time,
                 webhook_backoff: float = 1.0, webhook_max_attempts: int = 4,
                 search_lag_ms: float = 0) -> None:
        self.state = State(clock=clock)
        self.set_search_lag(search_lag_ms)
        self.idempotency = self.state.idempotency  # saved with the state (--state-file)
        self.faults = FaultTable()
        self.webhooks = Dispatcher(webhook_url, webhook_secret, backoff=webhook_backoff,
                                   max_attempts=webhook_max_attempts)
        self.state.webhooks_enabled = self.webhooks.enabled
        self.latency_ms = latency_ms
        self.base_url = "http://127.0.0.1"
        self._routes: dict[str, list] = {}
        for method, pattern, operation, fn in api.ROUTES:
            regex = re.compile("^" + pattern.replace("{id}", _ID) + "$")
            self._routes.setdefault(method, []).append((regex, operation, fn))

    # --- control -------------------------------------------------------------------------------

    def set_clock(self, clock: Callable[[], float]) -> None:
        self.state.clock = clock

    @property
    def search_lag_ms(self) -> float:
        return self.state.search.lag * 1000.0

    def set_search_lag(self, ms: float) -> None:
        """Search (``/v1/*/search``) sees each object as it was ``ms`` milliseconds ago on the
        emulator's clock; 0 (the default): at once. See ``search.py``. ValueError if negative."""
        with self.state.lock:
            self.state.search.set_lag(float(ms) / 1000.0)

    def reset(self) -> None:
        """Forget every object, key, fault, delivery and logged request (and the search index's
        pending changes). The latency, the search lag and the webhook configuration stay."""
        self.faults.clear()
        self.webhooks.reset()
        self.idempotency.clear()
        self.state.reset()

    def configure_webhooks(self, url: Optional[str], secret: Optional[str] = None,
                           **options) -> None:
        self.webhooks.configure(url, secret, **options)
        self.state.webhooks_enabled = self.webhooks.enabled

    def context(self, request_id: Optional[str] = None,
                idempotency_key: Optional[str] = None) -> Context:
        return Context(self.base_url, request_id, idempotency_key)

    def run(self, action: Callable[[State, Context], dict]) -> dict:
        """Run an emulator-only action under the lock, then queue its webhooks."""
        ctx = self.context()
        try:
            with self.state.lock:
                try:
                    return action(self.state, ctx)
                finally:
                    self.state.search.commit()
        finally:
            self.webhooks.enqueue(ctx.events)

    def close(self) -> None:
        self.faults.release_all()
        self.webhooks.stop()

    # --- the API -------------------------------------------------------------------------------

    def match(self, method: str, path: str):
        for regex, operation, fn in self._routes.get(method, ()):
            m = regex.match(path)
            if m:
                return operation, fn, m.groups()
        return None

    def handle_api(self, method: str, path: str, query: str, headers, body: bytes) -> ApiResult:
        idem_key = headers.get("Idempotency-Key")
        self.state.log_request(method, path, idem_key)
        fault = self.faults.take(method, path)
        if fault is not None:
            if fault.kind == "timeout":
                self.faults.hold(fault.seconds)
                return ApiResult(0, drop=True)
            if fault.kind == "refused":
                return ApiResult(0, refuse=True)
            if fault.kind == "error_500":
                # Stripe sends Stripe-Should-Retry: false with its 500s (its idempotency layer would
                # replay the same answer), and the SDK reads it: the client hears the 500 at once.
                return ApiResult(500, _json({"error": {
                    "type": "api_error",
                    "message": "An unknown error occurred (emulated fault)."}}),
                    {"Stripe-Should-Retry": "false"})
            if fault.kind == "rate_limit":
                return ApiResult(429, _json({"error": {
                    "type": "invalid_request_error", "code": "rate_limit",
                    "message": "Request rate limit exceeded. You can learn more about rate "
                               "limits here https://stripe.com/docs/rate-limits.",
                    "doc_url": "https://stripe.com/docs/error-codes/rate-limit"}}))
            if fault.kind == "lock_timeout":
                # Another request holds the object's lock: not executed, safe to retry (the SDK
                # retries a 429 lock_timeout; Stripe says so with Stripe-Should-Retry: true).
                return ApiResult(429, _json({"error": {
                    "type": "invalid_request_error", "code": "lock_timeout",
                    "message": "This object cannot be accessed right now because another API request "
                               "or Stripe process is currently accessing it. If you see this error "
                               "intermittently, retry the request. If you see this error frequently "
                               "and are making multiple concurrent requests to a single object, make "
                               "your requests serially or at a lower rate.",
                    "doc_url": "https://stripe.com/docs/error-codes/lock-timeout"}}),
                    {"Stripe-Should-Retry": "true"})
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000.0)
        result = self._execute(method, path, query, headers, body, idem_key)
        if fault is not None and fault.kind == "drop_after_work":
            result.drop = True
        if fault is not None and fault.kind == "reset_mid_body":
            result.cut = True
        return result

    def _execute(self, method: str, path: str, query: str, headers, body: bytes,
                 idem_key: Optional[str]) -> ApiResult:
        request_id = objects.new_id("req", 15)
        out_headers = {"Request-Id": request_id,
                       "Stripe-Version": headers.get("Stripe-Version") or objects.API_VERSION}
        auth = headers.get("Authorization") or ""
        api_key = auth[7:].strip() if auth.startswith("Bearer ") else ""
        if not api_key.startswith("sk_test_") or len(api_key) <= len("sk_test_"):
            message = ("You did not provide an API key. You need to provide your API key in the "
                       "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                       "YOUR_SECRET_KEY')." if not api_key else
                       f"Invalid API Key provided: {api_key[:8]}{'*' * 8}")
            return ApiResult(401, _json({"error": {"type": "invalid_request_error",
                                                   "message": message}}), out_headers)
        route = self.match(method, path)
        if route is None:
            return ApiResult(404, _json({"error": {
                "type": "invalid_request_error",
                "message": f"Unrecognized request URL ({method}: {path}). Please see "
                           f"https://stripe.com/docs or we can help at "
                           f"https://support.stripe.com/."}}), out_headers)
        operation, fn, ids = route
        try:
            params = parse_body(body) if method == "POST" else parse_query(query)
        except Exception:
            return ApiResult(400, _json({"error": {"type": "invalid_request_error",
                                                   "message": "Invalid request body."}}),
                             out_headers)
        entry = None
        if not applies(method):  # GET and DELETE ignore the key, as Stripe's do
            idem_key = None
        if idem_key:
            refused = key_error(idem_key)
            if refused is not None:
                return ApiResult(refused.status, _error(refused), out_headers)
            out_headers["Idempotency-Key"] = idem_key
            canonical = b"&".join(sorted(body.split(b"&"))) if body else b""
            fp = self.idempotency.fingerprint(method, path, canonical)
            # Keys are scoped per account, as Stripe's are: the same key under another
            # Stripe-Account header is another request.
            scope = api_key if not headers.get("Stripe-Account") else (
                f"{api_key}/{headers.get('Stripe-Account')}")
            outcome, entry = self.idempotency.begin(scope, idem_key, fp)
            if outcome == REPLAY:
                out_headers.update({"Idempotent-Replayed": "true",
                                    "Original-Request": entry.request_id})
                return ApiResult(entry.status, entry.body, out_headers)
            if outcome == CONFLICT:
                err = StripeError(
                    400, "idempotency_error",
                    f"Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{idem_key}' if you "
                    f"meant to execute a different request.")
                return ApiResult(400, _error(err), out_headers)
            if outcome == IN_USE:
                err = StripeError(
                    409, "invalid_request_error",
                    "There is currently another in-progress request using this Stripe "
                    "Idempotency Key (that probably means you submitted twice, and the other "
                    "request is still going through): '" + idem_key + "'. Please try again "
                    "later.", code="idempotency_key_in_use")
                return ApiResult(409, _error(err), out_headers)
            assert outcome == NEW
        ctx = self.context(request_id, idem_key)
        ctx.account = headers.get("Stripe-Account") or None
        save = False
        try:
            if ctx.account is not None:
                self._check_account_header(ctx.account, operation, api_key)
            check_unknown(operation, params)
            expand = get_list(params, "expand")
            with self.state.lock:
                try:
                    obj = fn(self.state, ctx, params, *ids)
                    payload = _json(self.expand(obj, expand))
                finally:  # changes made before a card error count too
                    self.state.search.commit()
            status, save = 200, True
        except StripeError as err:
            status, payload, save = err.status, _error(err), err.cacheable
        except Exception as exc:  # a bug: answer like Stripe's api_error, keep serving
            status, payload, save = 500, _json({"error": {  # saved, as Stripe saves its 500s
                "type": "api_error", "message": f"Emulator error: {type(exc).__name__}"}}), True
        if entry is not None:
            self.idempotency.finish(scope, idem_key, entry, status, payload, request_id, save)
        return ApiResult(status, payload, out_headers, ctx.events)

    def _check_account_header(self, account: str, operation: str, api_key: str) -> None:
        """A ``Stripe-Account`` header must name a connected account of this platform (else
        Stripe's 403), on an operation the emulator runs for a connected account (else a 400
        that says so: direct charges on connected accounts are not emulated)."""
        with self.state.lock:
            known = self.state.get("account", account) is not None
        if not known:
            raise StripeError(
                403, "invalid_request_error",
                f"The provided key '{api_key[:8]}{'*' * 8}' does not have access to account "
                f"'{account}' (or that account does not exist). Application access may have "
                f"been revoked.", code="account_invalid")
        if operation not in ACCOUNT_SCOPED:
            raise StripeError(
                400, "invalid_request_error",
                f"The emulator does not run {operation} for a connected account (the "
                f"Stripe-Account header): only {', '.join(sorted(ACCOUNT_SCOPED))}. Direct "
                f"charges on connected accounts are not emulated.", param="Stripe-Account",
                cacheable=False)

    # --- expansion -----------------------------------------------------------------------------

    def expand(self, obj: dict, paths: list) -> dict:
        if not paths:
            return obj
        tree: dict = {}
        for path in paths:
            if not isinstance(path, str):
                raise invalid("Invalid expand parameter.", param="expand")
            node = tree
            for part in path.split("."):
                node = node.setdefault(part, {})
        return self._expand(obj, tree, "")

    def _expand(self, obj: dict, tree: dict, prefix: str) -> dict:
        out = dict(obj)
        for key, sub in tree.items():
            name = prefix + key
            if key == "data" and obj.get("object") == "list":
                out["data"] = [self._expand(o, sub, "") if sub else o for o in obj["data"]]
                continue
            if key not in obj:
                raise invalid(f"This property cannot be expanded ({name}).", param="expand")
            value = obj[key]
            if isinstance(value, str):
                target = self.state.objects.get(value)
                if target is None:
                    if value in self.state.deleted_customers:
                        target = {"deleted": True, "id": value, "object": "customer"}
                    else:
                        raise invalid(f"This property cannot be expanded ({name}).",
                                      param="expand")
                value = target
            elif value is None:
                continue
            elif not isinstance(value, dict):
                raise invalid(f"This property cannot be expanded ({name}).", param="expand")
            out[key] = self._expand(value, sub, name + ".") if sub else value
        return out
