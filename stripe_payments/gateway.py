"""The one Stripe boundary of the project (STYLE.md §5).

Only this module imports ``stripe``. It builds a ``StripeClient`` from settings when used (so tests
and the emulator can point it elsewhere), passes an idempotency key on every write, retries network
failures itself with that same key, and turns Stripe's objects and errors into the project's own
small dataclasses and exceptions. Nothing else in the project knows Stripe's object shapes.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import requests
import stripe
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from linguaflex import deadline as request_deadline
from linguaflex import metrics
from linguaflex.errors import DomainError, envelope

from .cards import CardInput
from .decline_messages import customer_message
from .stripe_test_cards import TEST_PAYMENT_METHODS

logger = logging.getLogger(__name__)
T = TypeVar("T")

STRIPE_API_HOST = "https://api.stripe.com"
# What a Stripe object id looks like (pm_..., pi_..., seti_...): anything else never reaches Stripe.
STRIPE_ID_PATTERN = r"[A-Za-z0-9_]{1,255}"
STRIPE_ID = re.compile(STRIPE_ID_PATTERN)
RETRY_BACKOFF_SECONDS = (0.25, 0.75, 1.5)


# --- the project's own view of Stripe's objects ---------------------------------------------------
@dataclass(frozen=True)
class CardDetails:
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str


@dataclass(frozen=True)
class PaymentMethodInfo:
    id: str
    customer_id: str | None
    card: CardDetails | None


@dataclass(frozen=True)
class CardFailure:
    """Why a card was refused: Stripe's codes and its own ``message`` (ids masked), which is for
    admins and logs; the person paying is told ``decline_messages.customer_message(code, decline_code)``."""

    code: str
    decline_code: str | None
    message: str


@dataclass(frozen=True)
class IntentResult:
    """A PaymentIntent: ``status`` is Stripe's (succeeded, requires_action, ...)."""

    id: str
    status: str
    amount: int
    amount_received: int
    currency: str
    client_secret: str | None
    customer_id: str | None
    payment_method: PaymentMethodInfo | None
    latest_charge_id: str | None
    redirect_url: str | None
    last_error: CardFailure | None
    metadata: dict[str, str]
    created: int = 0  # Unix seconds


@dataclass(frozen=True)
class SetupResult:
    id: str
    status: str
    client_secret: str | None
    customer_id: str | None
    payment_method: PaymentMethodInfo | None
    redirect_url: str | None
    last_error: CardFailure | None
    metadata: dict[str, str]


@dataclass(frozen=True)
class RefundResult:
    id: str
    status: str  # pending, requires_action, succeeded, failed, canceled
    amount: int
    payment_intent_id: str | None
    charge_id: str | None
    failure_reason: str | None
    metadata: dict[str, str]
    created: int = 0  # Unix seconds
    transfer_reversal_id: str | None = None  # a destination charge's refund that reversed the transfer


@dataclass(frozen=True)
class ChargeResult:
    id: str
    payment_intent_id: str | None
    amount: int
    amount_refunded: int
    refunded: bool
    disputed: bool
    transfer_id: str | None = None  # a destination charge's transfer
    application_fee_id: str | None = None


@dataclass(frozen=True)
class AccountResult:
    """A connected account: what onboarding and ``account.updated`` keep in step."""

    id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    transfers_active: bool
    requirements_due: list[str]


@dataclass(frozen=True)
class TransferResult:
    id: str
    amount: int
    amount_reversed: int
    destination: str | None
    source_transaction: str | None
    transfer_group: str | None
    metadata: dict[str, str]


@dataclass(frozen=True)
class DisputeResult:
    id: str
    status: str  # Stripe's: needs_response, under_review, won, lost, warning_* ...
    amount: int
    charge_id: str | None
    payment_intent_id: str | None
    reason: str
    evidence_due_by: int | None  # Unix seconds


@dataclass(frozen=True)
class BalanceTxn:
    """One balance transaction of the platform or of a connected account."""

    id: str
    type: str
    amount: int
    fee: int
    net: int
    source: str | None


@dataclass(frozen=True)
class EventInfo:
    """A verified webhook event: only what the handlers need. ``object_state`` is the few fields of
    the event's object that its handler compares with the database (``_event_object_state``): a
    handler whose rows already say the same makes no Stripe call, and otherwise re-reads the object."""

    id: str
    type: str
    object_id: str
    object_type: str
    livemode: bool
    created: int
    payment_intent_id: str | None
    object_state: dict[str, Any] = field(default_factory=dict)


# --- errors -----------------------------------------------------------------------------------------
class GatewayError(DomainError):
    """Any failure of a Stripe call, rendered in the contract's envelope."""


class CardError(GatewayError):
    """Stripe refused the card. ``message`` is Stripe's own text (ids masked), for logs and admins;
    the envelope says ``customer_message`` instead, written for the person paying
    (decline_messages.py), with Stripe's ``code`` and ``decline_code``."""

    status_code = 402
    code = "card_declined"

    def __init__(self, message: str, *, code: str, decline_code: str | None = None,
                 payment_intent_id: str | None = None, setup_intent_id: str | None = None,
                 param: str | None = None,
                 extra: dict[str, Any] | None = None):
        self.decline_code = decline_code
        self.payment_intent_id = payment_intent_id
        self.setup_intent_id = setup_intent_id
        self.param = param
        super().__init__(message, code=code, extra={"decline_code": decline_code, **(extra or {})})

    @property
    def failure(self) -> CardFailure:
        return CardFailure(code=self.code, decline_code=self.decline_code, message=self.message)

    @property
    def customer_message(self) -> str:
        return customer_message(self.code, self.decline_code)

    def payload(self) -> dict[str, Any]:
        return envelope(self.code, self.customer_message, fields=self.fields, **self.extra)


class ProviderInvalidRequest(GatewayError):
    """Stripe refused the parameters (an unknown id, a refund beyond what is left, ...)."""

    status_code = 400
    code = "invalid_request"

    def __init__(self, message: str, *, stripe_code: str | None = None, param: str | None = None):
        self.stripe_code = stripe_code
        self.param = param
        fields = {param: [message]} if param else None
        super().__init__(message, fields=fields)


class ProviderError(GatewayError):
    status_code = 502
    code = "payment_provider_error"
    message = "The payment provider answered with an unexpected error."


class ProviderUnavailable(GatewayError):
    status_code = 503
    code = "payment_provider_unavailable"
    message = "The payment provider is unreachable or busy. Try again shortly."

    def __init__(self, message: str | None = None, *, retry_after: int = 5):
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class ProviderTimeout(GatewayError):
    status_code = 504
    code = "payment_provider_timeout"
    message = "The payment provider did not answer in time; the payment will be settled shortly."


class WebhookSignatureInvalid(DomainError):
    status_code = 400
    code = "invalid_request"  # the contract's code for any refused input
    message = "The webhook signature is missing, invalid or too old."


# --- the operations -------------------------------------------------------------------------------
# Every Stripe call the project makes: name -> (HTTP method, path prefix). ``_call`` refuses a name
# that is not here, and the fault-matrix tests are generated from this table, so a new Stripe call
# without its row of faults fails the suite.
OPERATIONS: dict[str, tuple[str, str]] = {
    # name: (HTTP method, a regular expression for the request path)
    "customers.create": ("POST", r"^/v1/customers$"),
    "setup_intents.create": ("POST", r"^/v1/setup_intents$"),
    "setup_intents.retrieve": ("GET", r"^/v1/setup_intents/[^/]+$"),
    "payment_intents.create": ("POST", r"^/v1/payment_intents$"),
    "payment_intents.retrieve": ("GET", r"^/v1/payment_intents/(?!search$)[^/]+$"),
    "payment_intents.cancel": ("POST", r"^/v1/payment_intents/[^/]+/cancel$"),
    "payment_intents.list": ("GET", r"^/v1/payment_intents$"),
    "payment_intents.search": ("GET", r"^/v1/payment_intents/search$"),
    "payment_methods.retrieve": ("GET", r"^/v1/payment_methods/[^/]+$"),
    "payment_methods.detach": ("POST", r"^/v1/payment_methods/[^/]+/detach$"),
    "refunds.create": ("POST", r"^/v1/refunds$"),
    "refunds.list": ("GET", r"^/v1/refunds$"),
    "charges.retrieve": ("GET", r"^/v1/charges/[^/]+$"),
    "charges.list": ("GET", r"^/v1/charges$"),
    "accounts.create": ("POST", r"^/v1/accounts$"),
    "accounts.retrieve": ("GET", r"^/v1/accounts/[^/]+$"),
    "account_links.create": ("POST", r"^/v1/account_links$"),
    "transfers.create": ("POST", r"^/v1/transfers$"),
    "transfers.list": ("GET", r"^/v1/transfers$"),
    "transfers.retrieve": ("GET", r"^/v1/transfers/[^/]+$"),
    "transfers.reversals.create": ("POST", r"^/v1/transfers/[^/]+/reversals$"),
    "balance_transactions.list": ("GET", r"^/v1/balance_transactions$"),
    "disputes.retrieve": ("GET", r"^/v1/disputes/[^/]+$"),
    "disputes.list": ("GET", r"^/v1/disputes$"),
}

# A try is not started with less than this left of the request's deadline: it could only time out.
MIN_TRY_SECONDS = 0.5


# --- the client -------------------------------------------------------------------------------------
class _DeadlineRequestsClient(stripe.RequestsClient):
    """The SDK's requests client, with each try's timeouts cut to what is left of the request's
    deadline (``linguaflex.deadline``): the SDK reads ``_timeout`` at every request."""

    @property
    def _timeout(self):
        connect, read = self._configured_timeout
        left = request_deadline.remaining()
        if left is None:
            return connect, read
        left = max(MIN_TRY_SECONDS, left)
        return min(connect, left), min(read, left)

    @_timeout.setter
    def _timeout(self, value) -> None:
        self._configured_timeout = value


_clients: dict[tuple, stripe.StripeClient] = {}
_clients_lock = threading.Lock()


def _client() -> stripe.StripeClient:
    key = (
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE,
        settings.STRIPE_CONNECT_TIMEOUT,
        settings.STRIPE_READ_TIMEOUT,
    )
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                if not settings.STRIPE_SECRET_KEY:
                    raise ProviderUnavailable("Payments are not configured (STRIPE_SECRET_KEY is empty).")
                client = stripe.StripeClient(
                    settings.STRIPE_SECRET_KEY,
                    base_addresses={"api": settings.STRIPE_API_BASE},
                    # The SDK's pinned API version (stripe.api_version) is used: no override.
                    max_network_retries=0,  # retried below, explicitly, with the same idempotency key
                    http_client=_DeadlineRequestsClient(
                        timeout=(settings.STRIPE_CONNECT_TIMEOUT, settings.STRIPE_READ_TIMEOUT)
                    ),
                )
                _clients[key] = client
    return client


def _is_timeout(exc: stripe.APIConnectionError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, requests.exceptions.ReadTimeout) or (
        isinstance(cause, requests.exceptions.Timeout) and not isinstance(cause, requests.exceptions.ConnectTimeout)
    )


def _card_failure_from(error_obj: Any) -> CardFailure | None:
    """An intent's ``last_payment_error`` / ``last_setup_error``: a plain dict once ``_plain`` ran."""
    if not error_obj:
        return None
    error = _plain(error_obj)
    return CardFailure(
        code=error.get("code") or "card_declined",
        decline_code=error.get("decline_code"),
        message=scrub_ids(error.get("message") or "") or "The card was declined.",
    )


# Stripe's messages name objects ("... belongs to customer cus_123"): another student's customer
# or card must never reach a client, so every id in a message Stripe wrote is masked.
_STRIPE_ID = re.compile(r"\b(?:acct|ba|card|ch|cs|cus|dp|evt|in|pi|pm|po|price|prod|py|re|seti|src|sub|tok|tr|txn)"
                        r"_[A-Za-z0-9]+(?:_secret_[A-Za-z0-9]+)?\b")


def scrub_ids(message: str) -> str:
    return _STRIPE_ID.sub("[id]", message)


def _map_error(exc: stripe.StripeError) -> GatewayError:
    if isinstance(exc, stripe.CardError):
        err = exc.error
        pi = getattr(err, "payment_intent", None) if err else None
        si = getattr(err, "setup_intent", None) if err else None
        return CardError(
            scrub_ids(exc.user_message or str(getattr(err, "message", ""))) or "The card was declined.",
            code=exc.code or "card_declined",
            decline_code=getattr(err, "decline_code", None) if err else None,
            payment_intent_id=getattr(pi, "id", None) if pi else None,
            setup_intent_id=getattr(si, "id", None) if si else None,
            param=getattr(exc, "param", None),
        )
    if isinstance(exc, stripe.RateLimitError):
        return ProviderUnavailable("The payment provider is rate-limiting requests. Try again shortly.")
    if isinstance(exc, stripe.APIConnectionError):
        if _is_timeout(exc):
            return ProviderTimeout()
        return ProviderUnavailable()
    if isinstance(exc, stripe.InvalidRequestError):
        return ProviderInvalidRequest(scrub_ids(exc.user_message or "") or "The payment provider refused the request.",
                                      stripe_code=exc.code, param=exc.param)
    if isinstance(exc, stripe.AuthenticationError):
        logger.error("Stripe refused the API key (check STRIPE_SECRET_KEY)")
        return ProviderError("The payment provider refused our credentials.")
    return ProviderError()


def _should_retry(exc: stripe.StripeError) -> bool:
    if isinstance(exc, stripe.APIConnectionError):
        return exc.should_retry
    if isinstance(exc, stripe.APIError) and exc.http_status is not None:
        return exc.http_status == 409 or exc.http_status >= 500
    return False


def _out_of_time() -> bool:
    left = request_deadline.remaining()
    return left is not None and left < MIN_TRY_SECONDS


def _call(operation: str, fn: Callable[[], T]) -> T:
    """Run one Stripe call, retrying network failures, conflicts and 5xx (same idempotency key),
    within the request's deadline: no try starts once it is spent (504, nothing sent)."""
    if operation not in OPERATIONS:
        raise LookupError(f"unknown Stripe operation {operation!r}: add it to gateway.OPERATIONS")
    retries = max(0, int(settings.STRIPE_MAX_NETWORK_RETRIES))
    attempt = 0
    while True:
        if _out_of_time():
            logger.warning("stripe %s not %s: the request's deadline is spent", operation,
                           "retried" if attempt else "tried")
            raise ProviderTimeout()
        started = time.perf_counter()
        try:
            result = fn()
        except stripe.StripeError as exc:
            metrics.stripe_call(operation, time.perf_counter() - started, _error_label(exc))
            if attempt < retries and _should_retry(exc):
                delay = RETRY_BACKOFF_SECONDS[min(attempt, len(RETRY_BACKOFF_SECONDS) - 1)]
                left = request_deadline.remaining()
                if left is None or left - delay >= MIN_TRY_SECONDS:
                    logger.warning("stripe %s failed (%s); retry %d in %.2fs", operation, type(exc).__name__,
                                   attempt + 1, delay)
                    attempt += 1
                    time.sleep(delay)
                    continue
            mapped = _map_error(exc)
            if not isinstance(mapped, CardError):
                logger.warning("stripe %s failed: %s %s", operation, type(exc).__name__, mapped.code)
            raise mapped from None
        metrics.stripe_call(operation, time.perf_counter() - started)
        return result


def _error_label(exc: stripe.StripeError) -> str:
    """A bounded label for the errors metric: Stripe's code for a card or request error, else the
    kind of failure (timeout, connection, rate_limit, api_error_5xx ...)."""
    if isinstance(exc, stripe.CardError):
        return (exc.code or "card_declined")[:40]
    if isinstance(exc, stripe.APIConnectionError):
        return "timeout" if _is_timeout(exc) else "connection"
    if isinstance(exc, stripe.RateLimitError):
        return "rate_limit"
    if isinstance(exc, stripe.InvalidRequestError):
        return f"invalid_request_{exc.http_status or 400}"
    if isinstance(exc, stripe.AuthenticationError):
        return "authentication"
    return f"api_error_{exc.http_status or 'unknown'}"


def _options(idempotency_key: str | None = None) -> dict[str, Any]:
    return {"idempotency_key": idempotency_key} if idempotency_key else {}


# --- conversions ------------------------------------------------------------------------------------
def _plain(obj: Any) -> dict[str, Any]:
    """A Stripe object as a plain dict (the SDK's objects are not dicts)."""
    if isinstance(obj, dict):
        return obj
    return obj.to_dict()


def _id_of(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return value.get("id") if isinstance(value, dict) else getattr(value, "id", None)


def _pm_info(pm: Any) -> PaymentMethodInfo | None:
    if pm is None or isinstance(pm, str):
        return PaymentMethodInfo(id=pm, customer_id=None, card=None) if pm else None
    pm = _plain(pm)
    card = pm.get("card")
    details = None
    if card:
        details = CardDetails(
            brand=card.get("brand") or "unknown",
            last4=card.get("last4") or "",
            exp_month=int(card.get("exp_month") or 0),
            exp_year=int(card.get("exp_year") or 0),
            fingerprint=card.get("fingerprint") or "",
        )
    return PaymentMethodInfo(id=pm["id"], customer_id=_id_of(pm.get("customer")), card=details)


def _redirect_url(intent: dict[str, Any]) -> str | None:
    """The page 3-D Secure opens in a browser: ``redirect_to_url``'s ``url``. Any other next
    action, ``use_stripe_sdk`` (Stripe's answer to a confirm without ``return_url``; its content is
    for Stripe's client SDKs only) among them, has none: the client completes it with the intent's
    client secret."""
    action = intent.get("next_action") or {}
    if action.get("type") != "redirect_to_url":
        return None
    return (action.get("redirect_to_url") or {}).get("url") or None


def _intent(pi: Any) -> IntentResult:
    pi = _plain(pi)
    return IntentResult(
        id=pi["id"],
        status=pi["status"],
        amount=int(pi.get("amount") or 0),
        amount_received=int(pi.get("amount_received") or 0),
        currency=pi.get("currency") or "usd",
        client_secret=pi.get("client_secret"),
        customer_id=_id_of(pi.get("customer")),
        payment_method=_pm_info(pi.get("payment_method")),
        latest_charge_id=_id_of(pi.get("latest_charge")),
        redirect_url=_redirect_url(pi),
        last_error=_card_failure_from(pi.get("last_payment_error")),
        metadata=dict(pi.get("metadata") or {}),
        created=int(pi.get("created") or 0),
    )


def _setup(si: Any) -> SetupResult:
    si = _plain(si)
    return SetupResult(
        id=si["id"],
        status=si["status"],
        client_secret=si.get("client_secret"),
        customer_id=_id_of(si.get("customer")),
        payment_method=_pm_info(si.get("payment_method")),
        redirect_url=_redirect_url(si),
        last_error=_card_failure_from(si.get("last_setup_error")),
        metadata=dict(si.get("metadata") or {}),
    )


def _refund(refund: Any) -> RefundResult:
    refund = _plain(refund)
    return RefundResult(
        id=refund["id"],
        status=refund["status"],
        amount=int(refund.get("amount") or 0),
        payment_intent_id=_id_of(refund.get("payment_intent")),
        charge_id=_id_of(refund.get("charge")),
        failure_reason=refund.get("failure_reason"),
        metadata=dict(refund.get("metadata") or {}),
        created=int(refund.get("created") or 0),
        transfer_reversal_id=_id_of(refund.get("transfer_reversal")),
    )


# --- card data ----------------------------------------------------------------------------------------
def is_live_mode() -> bool:
    return settings.STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))


def _talks_to_real_stripe() -> bool:
    return settings.STRIPE_API_BASE.rstrip("/") == STRIPE_API_HOST


@sensitive_variables("card")
def _payment_method_params(card: CardInput) -> dict[str, Any]:
    """How a raw card travels: raw data to the emulator or an account allowed raw card data;
    Stripe's test PaymentMethods with a test key against Stripe itself."""
    if _talks_to_real_stripe():
        if is_live_mode():
            if not settings.STRIPE_ALLOW_RAW_CARD_DATA:
                raise ProviderInvalidRequest(
                    "Raw card numbers are not accepted in live mode; send a payment_method_id created by "
                    "Stripe's client SDKs.", param="card_number")
        else:
            test_pm = TEST_PAYMENT_METHODS.get(card.number)
            if test_pm is None:
                raise ProviderInvalidRequest(
                    "With Stripe test keys only Stripe's test cards can be used (see the README).",
                    param="card_number")
            return {"payment_method": test_pm}
    billing = {"name": card.cardholder_name} if card.cardholder_name else {}
    data: dict[str, Any] = {
        "type": "card",
        "card": {"number": card.number, "exp_month": card.exp_month, "exp_year": card.exp_year, "cvc": card.cvc},
    }
    if billing:
        data["billing_details"] = billing
    return {"payment_method_data": data}


# --- operations -----------------------------------------------------------------------------------------
def customer_create(*, email: str, user_id: int, idempotency_key: str) -> str:
    customer = _call("customers.create", lambda: _client().v1.customers.create(
        params={"email": email, "metadata": {"user_id": str(user_id)}},
        options=_options(idempotency_key),
    ))
    return customer.id


@sensitive_variables("card", "params")
def setup_intent_create(*, customer_id: str, card: CardInput | None = None, payment_method_id: str | None = None,
                        return_url: str, idempotency_key: str, metadata: dict[str, str] | None = None) -> SetupResult:
    """Create and confirm a SetupIntent: validates the card, attaches it, returns its details.

    A card that needs 3-D Secure comes back ``requires_action`` with a redirect URL."""
    params: dict[str, Any] = {
        "customer": customer_id,
        "confirm": True,
        "usage": "off_session",
        "allowed_payment_method_types": ["card"],
        "return_url": return_url,
        "metadata": metadata or {},
        "expand": ["payment_method"],
    }
    if card is not None:
        params.update(_payment_method_params(card))
    elif payment_method_id:
        params["payment_method"] = payment_method_id
    return _setup(_call("setup_intents.create", lambda: _client().v1.setup_intents.create(
        params=params, options=_options(idempotency_key))))


def setup_intent_retrieve(setup_intent_id: str) -> SetupResult:
    return _setup(_call("setup_intents.retrieve", lambda: _client().v1.setup_intents.retrieve(
        setup_intent_id, params={"expand": ["payment_method"]})))


@sensitive_variables("card", "params")
def payment_intent_create(*, amount_cents: int, idempotency_key: str, metadata: dict[str, str],
                          customer_id: str | None = None, card: CardInput | None = None,
                          payment_method_id: str | None = None, save_card: bool = False,
                          off_session: bool = False, confirm: bool = True,
                          return_url: str | None = None, description: str = "",
                          destination_account_id: str | None = None,
                          application_fee_cents: int | None = None) -> IntentResult:
    """One call: a USD PaymentIntent for the card, confirmed at once unless ``confirm`` is False.
    With ``destination_account_id``, a destination charge in the same call: the amount goes to that
    connected account and ``application_fee_cents`` comes back to the platform."""
    params: dict[str, Any] = {
        "amount": amount_cents,
        "currency": "usd",
        "allowed_payment_method_types": ["card"],
        "metadata": metadata,
    }
    if destination_account_id:
        params["transfer_data"] = {"destination": destination_account_id}
        params["application_fee_amount"] = int(application_fee_cents or 0)
        params["transfer_group"] = f"payment-{metadata.get('payment_id', '')}"
    if description:
        params["description"] = description
    if customer_id:
        params["customer"] = customer_id
    if card is not None:
        params.update(_payment_method_params(card))
    elif payment_method_id:
        params["payment_method"] = payment_method_id
    if save_card:
        params["setup_future_usage"] = "off_session"
    if confirm:
        params["confirm"] = True
        params["expand"] = ["payment_method"]
        if off_session:
            params["off_session"] = True
        elif return_url:
            params["return_url"] = return_url
    return _intent(_call("payment_intents.create", lambda: _client().v1.payment_intents.create(
        params=params, options=_options(idempotency_key))))


def payment_intent_retrieve(payment_intent_id: str) -> IntentResult:
    return _intent(_call("payment_intents.retrieve", lambda: _client().v1.payment_intents.retrieve(
        payment_intent_id, params={"expand": ["payment_method"]})))


def payment_intent_cancel(payment_intent_id: str, *, idempotency_key: str) -> IntentResult:
    return _intent(_call("payment_intents.cancel", lambda: _client().v1.payment_intents.cancel(
        payment_intent_id, options=_options(idempotency_key))))


def payment_method_detach(payment_method_id: str, *, idempotency_key: str) -> None:
    _call("payment_methods.detach", lambda: _client().v1.payment_methods.detach(
        payment_method_id, options=_options(idempotency_key)))


def payment_method_retrieve(payment_method_id: str) -> PaymentMethodInfo:
    info = _pm_info(_call("payment_methods.retrieve", lambda: _client().v1.payment_methods.retrieve(payment_method_id)))
    assert info is not None
    return info


def refund_create(*, payment_intent_id: str, amount_cents: int, idempotency_key: str,
                  metadata: dict[str, str], reason: str | None = None,
                  reverse_split: bool = False) -> RefundResult:
    """``reverse_split``: a destination charge's refund, which takes back the teacher's transfer
    and refunds the platform's fee in proportion (``reverse_transfer``, ``refund_application_fee``)."""
    params: dict[str, Any] = {"payment_intent": payment_intent_id, "amount": amount_cents, "metadata": metadata}
    if reverse_split:
        params["reverse_transfer"] = True
        params["refund_application_fee"] = True
    if reason:
        params["reason"] = reason  # duplicate, fraudulent or requested_by_customer
    return _refund(_call("refunds.create", lambda: _client().v1.refunds.create(
        params=params, options=_options(idempotency_key))))


def refunds_for_payment_intent(payment_intent_id: str) -> list[RefundResult]:
    return _list_all("refunds.list", lambda: _client().v1.refunds, _refund, None,
                     {"payment_intent": payment_intent_id})


def _charge(charge: Any) -> ChargeResult:
    charge = _plain(charge)
    return ChargeResult(
        id=charge["id"],
        payment_intent_id=_id_of(charge.get("payment_intent")),
        amount=int(charge.get("amount") or 0),
        amount_refunded=int(charge.get("amount_refunded") or 0),
        refunded=bool(charge.get("refunded")),
        disputed=bool(charge.get("disputed")),
        transfer_id=_id_of(charge.get("transfer")),
        application_fee_id=_id_of(charge.get("application_fee")),
    )


def charge_retrieve(charge_id: str) -> ChargeResult:
    return _charge(_call("charges.retrieve", lambda: _client().v1.charges.retrieve(charge_id)))


# --- Connect -----------------------------------------------------------------------------------------------
def _account(acct: Any) -> AccountResult:
    acct = _plain(acct)
    requirements = acct.get("requirements") or {}
    due = list(dict.fromkeys([*(requirements.get("past_due") or []), *(requirements.get("currently_due") or [])]))
    return AccountResult(
        id=acct["id"], charges_enabled=bool(acct.get("charges_enabled")),
        payouts_enabled=bool(acct.get("payouts_enabled")), details_submitted=bool(acct.get("details_submitted")),
        transfers_active=(acct.get("capabilities") or {}).get("transfers") == "active",
        requirements_due=due,
    )


def account_create(*, email: str, teacher_id: int, idempotency_key: str) -> AccountResult:
    """The teacher's connected account, with controller properties as Stripe recommends for new
    platforms: Express dashboard, the platform pays Stripe's fees and carries the losses, Stripe
    collects the requirements; ``card_payments`` and ``transfers`` requested."""
    params = {
        "controller": {"fees": {"payer": "application"}, "losses": {"payments": "application"},
                       "requirement_collection": "stripe", "stripe_dashboard": {"type": "express"}},
        "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
        "country": "US", "email": email, "metadata": {"teacher_id": str(teacher_id)},
    }
    return _account(_call("accounts.create", lambda: _client().v1.accounts.create(
        params=params, options=_options(idempotency_key))))


def account_retrieve(account_id: str) -> AccountResult:
    return _account(_call("accounts.retrieve", lambda: _client().v1.accounts.retrieve(account_id)))


def account_link_create(*, account_id: str, refresh_url: str, return_url: str) -> str:
    """A fresh hosted-onboarding link (single use, minutes long): its URL."""
    link = _call("account_links.create", lambda: _client().v1.account_links.create(params={
        "account": account_id, "type": "account_onboarding", "refresh_url": refresh_url,
        "return_url": return_url}))
    return _plain(link)["url"]


def _transfer(tr: Any) -> TransferResult:
    tr = _plain(tr)
    return TransferResult(
        id=tr["id"], amount=int(tr.get("amount") or 0), amount_reversed=int(tr.get("amount_reversed") or 0),
        destination=_id_of(tr.get("destination")), source_transaction=_id_of(tr.get("source_transaction")),
        transfer_group=tr.get("transfer_group"), metadata=dict(tr.get("metadata") or {}),
    )


def transfer_create(*, amount_cents: int, destination_account_id: str, source_charge_id: str | None,
                    transfer_group: str, metadata: dict[str, str], idempotency_key: str) -> TransferResult:
    """A teacher's owed share, paid from the charge it came from (``source_transaction``: usable
    while the charge's funds are still pending); without one, from the available balance."""
    params: dict[str, Any] = {"amount": amount_cents, "currency": "usd", "destination": destination_account_id,
                              "transfer_group": transfer_group, "metadata": metadata}
    if source_charge_id:
        params["source_transaction"] = source_charge_id
    return _transfer(_call("transfers.create", lambda: _client().v1.transfers.create(
        params=params, options=_options(idempotency_key))))


def transfers_for_group(transfer_group: str) -> list[TransferResult]:
    return _list_all("transfers.list", lambda: _client().v1.transfers, _transfer, None,
                     {"transfer_group": transfer_group})


def transfer_reverse(*, transfer_id: str, amount_cents: int, idempotency_key: str,
                     metadata: dict[str, str]) -> TransferResult:
    """Take ``amount_cents`` of a transfer back from the teacher's account; the transfer after it."""
    _call("transfers.reversals.create", lambda: _client().v1.transfers.reversals.create(
        transfer_id, params={"amount": amount_cents, "metadata": metadata}, options=_options(idempotency_key)))
    return _transfer(_call("transfers.retrieve", lambda: _client().v1.transfers.retrieve(transfer_id)))


def _dispute(dp: Any) -> DisputeResult:
    dp = _plain(dp)
    details = dp.get("evidence_details") or {}
    return DisputeResult(
        id=dp["id"], status=dp.get("status") or "", amount=int(dp.get("amount") or 0),
        charge_id=_id_of(dp.get("charge")), payment_intent_id=_id_of(dp.get("payment_intent")),
        reason=dp.get("reason") or "", evidence_due_by=details.get("due_by"),
    )


def dispute_retrieve(dispute_id: str) -> DisputeResult:
    return _dispute(_call("disputes.retrieve", lambda: _client().v1.disputes.retrieve(dispute_id)))


def disputes_for_charge(charge_id: str) -> list[DisputeResult]:
    return _list_all("disputes.list", lambda: _client().v1.disputes, _dispute, None, {"charge": charge_id})


def _balance_txn(txn: Any) -> BalanceTxn:
    txn = _plain(txn)
    return BalanceTxn(id=txn["id"], type=txn.get("type") or "", amount=int(txn.get("amount") or 0),
                      fee=int(txn.get("fee") or 0), net=int(txn.get("net") or 0), source=_id_of(txn.get("source")))


def balance_transactions_all(*, account_id: str | None = None) -> list[BalanceTxn]:
    """Every balance transaction of the platform, or of a connected account (``Stripe-Account``)."""
    options = {"stripe_account": account_id} if account_id else {}
    params: dict[str, Any] = {"limit": LIST_PAGE_SIZE}
    found: list[BalanceTxn] = []
    while True:
        page = _call("balance_transactions.list", lambda: _client().v1.balance_transactions.list(
            params=dict(params), options=options))
        found.extend(_balance_txn(item) for item in page.data)
        if not page.has_more or not page.data:
            return found
        params["starting_after"] = page.data[-1].id


# --- whole lists, for the consistency check (lists are consistent at Stripe; search is not) --------------
LIST_PAGE_SIZE = 100


def _list_all(operation: str, resource: Callable[[], Any], convert: Callable[[Any], T],
              created_gte: int | None, filters: dict[str, Any] | None = None) -> list[T]:
    """Every object of one list, newest first, page by page (``starting_after``)."""
    params: dict[str, Any] = {"limit": LIST_PAGE_SIZE, **(filters or {})}
    if created_gte is not None:
        params["created"] = {"gte": int(created_gte)}
    found: list[T] = []
    while True:
        page = _call(operation, lambda: resource().list(params=dict(params)))
        found.extend(convert(item) for item in page.data)
        if not page.has_more or not page.data:
            return found
        params["starting_after"] = page.data[-1].id


def payment_intents_all(*, created_gte: int | None = None) -> list[IntentResult]:
    return _list_all("payment_intents.list", lambda: _client().v1.payment_intents, _intent, created_gte)


def refunds_all(*, created_gte: int | None = None) -> list[RefundResult]:
    return _list_all("refunds.list", lambda: _client().v1.refunds, _refund, created_gte)


def charges_all(*, created_gte: int | None = None) -> list[ChargeResult]:
    return _list_all("charges.list", lambda: _client().v1.charges, _charge, created_gte)


# --- webhooks ---------------------------------------------------------------------------------------------
def webhook_event_verify(payload: bytes, signature_header: str | None) -> EventInfo:
    """Verify ``Stripe-Signature`` over the raw body (over 300 s old is refused) and read the event."""
    if not settings.STRIPE_WEBHOOK_SECRET:
        raise WebhookSignatureInvalid("Webhooks are not configured (STRIPE_WEBHOOK_SECRET is empty).")
    if not signature_header:
        raise WebhookSignatureInvalid("The Stripe-Signature header is missing.")
    # The platform's endpoint, or the Connect endpoint (connected accounts' events) at the same URL.
    secrets = [secret for secret in (settings.STRIPE_WEBHOOK_SECRET, settings.STRIPE_CONNECT_WEBHOOK_SECRET) if secret]
    event = None
    for secret in secrets:
        try:
            event = stripe.Webhook.construct_event(payload, signature_header, secret,
                                                   tolerance=settings.STRIPE_WEBHOOK_TOLERANCE)
            break
        except stripe.SignatureVerificationError:
            continue
        except ValueError:
            raise WebhookSignatureInvalid("The webhook body is not a Stripe event.") from None
    if event is None:
        raise WebhookSignatureInvalid()
    event = _plain(event)
    obj = event.get("data", {}).get("object", {}) or {}
    object_type = obj.get("object", "") or ""
    pi_id = obj.get("id") if object_type == "payment_intent" else _id_of(obj.get("payment_intent"))
    return EventInfo(
        id=event.get("id", ""),
        type=event.get("type", ""),
        object_id=obj.get("id", "") or "",
        object_type=object_type,
        livemode=bool(event.get("livemode")),
        created=int(event.get("created") or 0),
        payment_intent_id=pi_id,
        object_state=_event_object_state(object_type, obj),
    )


# The fields an event's object must carry for its state to be compared (Stripe's always do).
_STATE_KEYS = {
    "payment_intent": ("status", "amount"), "setup_intent": ("status", "payment_method"),
    "refund": ("status", "amount"), "charge": ("amount", "amount_refunded"),
    "dispute": ("status", "amount"), "account": ("charges_enabled", "payouts_enabled", "details_submitted"),
}


def _event_object_state(object_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    """What the handlers compare with the database, of a verified event's object: statuses,
    amounts and ids only (never a client secret, card or metadata). Empty for other objects and
    for an object without the fields (a handler then re-reads it)."""
    if not all(key in obj for key in ("id", *_STATE_KEYS.get(object_type, ("-",)))):
        return {}
    try:
        if object_type == "payment_intent":
            intent = _intent(obj)
            return {"status": intent.status, "amount": intent.amount, "latest_charge": intent.latest_charge_id,
                    "failed": intent.last_error is not None}
        if object_type == "setup_intent":
            setup = _setup(obj)
            return {"status": setup.status, "customer": setup.customer_id,
                    "payment_method": setup.payment_method.id if setup.payment_method else None}
        if object_type == "refund":
            refund = _refund(obj)
            return {"status": refund.status, "amount": refund.amount, "payment_intent": refund.payment_intent_id}
        if object_type == "charge":
            charge = _charge(obj)
            return {"amount": charge.amount, "amount_refunded": charge.amount_refunded,
                    "payment_intent": charge.payment_intent_id}
        if object_type == "dispute":
            dispute = _dispute(obj)
            return {"status": dispute.status, "amount": dispute.amount, "charge": dispute.charge_id,
                    "payment_intent": dispute.payment_intent_id, "reason": dispute.reason,
                    "evidence_due_by": dispute.evidence_due_by}
        if object_type == "account":
            account = _account(obj)
            return {"charges_enabled": account.charges_enabled, "payouts_enabled": account.payouts_enabled,
                    "details_submitted": account.details_submitted, "transfers_active": account.transfers_active,
                    "requirements_due": account.requirements_due}
    except (KeyError, TypeError, ValueError):  # a partial object: nothing to compare, the handler reads
        return {}
    return {}


# How far around our row's creation a PaymentIntent for it can have been created at Stripe: clocks
# differ by seconds, and the create call runs within one request's deadline of the row's commit.
INTENT_WINDOW_SECONDS = 600


def payment_intent_find_for_payment(payment_id: int, *, created_at: int) -> IntentResult | None:
    """The PaymentIntent created for one of our payments whose answer never reached us (a dropped
    connection), by its ``metadata.payment_id``.

    Stripe's search is eventually consistent (about a minute behind, and it may return an old
    status), so it cannot prove an intent does not exist: when it finds none, the consistent list
    is read for the window the intent must have been created in (``created_at`` is our row's,
    Unix seconds). Whatever is found is re-read by id."""
    page = _plain(_call("payment_intents.search", lambda: _client().v1.payment_intents.search(
        params={"query": f"metadata['payment_id']:'{int(payment_id)}'", "limit": 10})))
    found = [(pi["id"], pi.get("status"), int(pi.get("created") or 0)) for pi in page.get("data") or []]
    if not found:
        window = {"created": {"gte": created_at - INTENT_WINDOW_SECONDS, "lte": created_at + INTENT_WINDOW_SECONDS}}
        found = [(pi.id, pi.status, pi.created) for pi in _list_all(
            "payment_intents.list", lambda: _client().v1.payment_intents, _intent, None, window)
            if pi.metadata.get("payment_id") == str(int(payment_id))]
    if not found:
        return None
    # Several exist only if an idempotency key expired between retries; the furthest along wins.
    rank = {"succeeded": 0, "processing": 1, "requires_capture": 2, "requires_action": 3}
    best = min(found, key=lambda pi: (rank.get(pi[1], 9), -pi[2]))
    return payment_intent_retrieve(best[0])
