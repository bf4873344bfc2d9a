"""Helpers shared by the payment tests: card bodies, the endpoints, Stripe call logs, a real
payment through the API, the 3-D Secure page, signed webhook deliveries, running a command.

Test modules import these names from here; no test module imports another.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from datetime import date
from io import StringIO
from urllib.parse import urlsplit

import pytest
import requests
import stripe
from django.core.management import call_command

ADD_URL = "/stripe-payments/add-payment-method/"
PAY_URL = "/stripe-payments/process-payment/"
METHODS_URL = "/stripe-payments/payment-methods/"
PAYMENTS_URL = "/stripe-payments/payments/"
RETURN_URL = "/stripe-payments/payment-return/"
CREATE_INTENT_URL = "/stripe-payments/create-payment-intent/"
CONFIRM_URL = "/stripe-payments/confirm-payment/"
REFUNDS_URL = "/stripe-payments/refunds/"
ADMIN_REFUNDS_URL = "/stripe-payments/admin-refunds/"
WEBHOOK_URL = "/stripe-payments/webhook/"
WEBHOOK_SECRET = "whsec_test_linguaflex"  # linguaflex/settings/test.py

EXP_YEAR = date.today().year + 3

VISA = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT = "4000000000009995"
LOST = "4000000000009987"
MASTERCARD = "5555555555554444"
AMEX = "378282246310005"
THREE_DS = "4000002500003155"
CHARGE_FAIL = "4000000000000341"
BAD_LUHN = "4242424242424241"


def card(number: str = VISA, *, cvc: str | None = None, exp_month: int = 12, exp_year: int = EXP_YEAR, **extra) -> dict:
    if cvc is None:
        cvc = "1234" if number.startswith(("34", "37")) else "123"
    return {"card_number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc, **extra}


def stripe_calls(emulator, method: str | None = None, prefix: str = "/v1/") -> list[dict]:
    """The emulator's /v1 request log (no emulator control routes)."""
    return [r for r in emulator.requests()
            if r["path"].startswith(prefix) and (method is None or r["method"] == method)]


def refund_posts(emulator) -> list[dict]:
    """The refund creations Stripe received."""
    return stripe_calls(emulator, "POST", "/v1/refunds")


def pi_creates(emulator) -> list[dict]:
    """The PaymentIntent creations Stripe received."""
    return stripe_calls(emulator, "POST", "/v1/payment_intents")


def error_of(response) -> dict:
    """The error of a failure envelope (asserting it is one)."""
    body = response.json()
    assert body["success"] is False
    return body["error"]


def client_sdk(emulator) -> stripe.StripeClient:
    """Plays Stripe's client SDKs (which confirm PaymentIntents in the app), not the backend."""
    return stripe.StripeClient("sk_test_client_side", base_addresses={"api": emulator.base_url},
                               max_network_retries=0)


def dashboard(emulator) -> stripe.StripeClient:
    """Stripe's dashboard: refunds issued outside LinguaFlex."""
    return stripe.StripeClient("sk_test_dashboard", base_addresses={"api": emulator.base_url}, max_network_retries=0)


def through_3ds_page(redirect_url: str, *, succeed: bool = True) -> str:
    """What the browser does on the 3-D Secure page: press a button, follow the redirect to our
    return page. Returns the return page's path and query."""
    action = "complete" if succeed else "fail"
    answer = requests.post(f"{redirect_url}/{action}", allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert location.path == RETURN_URL
    return f"{location.path}?{location.query}"


def run_command(command: str, *args) -> str:
    """A management command's stdout."""
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


# --- webhooks: Stripe's signature and deliveries ------------------------------------------------------
def sign(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def post_event(client, event: dict, *, signature: str | None = "sign", **sign_options):
    payload = json.dumps(event).encode()
    headers = {}
    if signature == "sign":
        headers["HTTP_STRIPE_SIGNATURE"] = sign(payload, **sign_options)
    elif signature is not None:
        headers["HTTP_STRIPE_SIGNATURE"] = signature
    return client.post(WEBHOOK_URL, data=payload, content_type="application/json", **headers)


def deliver(client, event: dict) -> dict:
    response = post_event(client, event)
    assert response.status_code == 200, response.content
    return response.json()


def only_event(emulator, type_: str) -> dict:
    [event] = emulator.events(type_)
    return event


# --- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture
def student_client(client_for, student):
    return client_for(student)


@pytest.fixture
def add_card(student_client):
    """POST add-payment-method as ``student`` (or ``client``)."""

    def post(number: str = VISA, *, client=None, headers=None, **card_extra):
        body = card(number, **card_extra)
        return (client or student_client).post(ADD_URL, body, format="json", headers=headers or {})

    return post


@pytest.fixture
def pay(student_client, gig):
    """POST process-payment for ``gig`` (or ``gig_id``) as ``student`` (or ``client``)."""

    def post(number: str | None = VISA, *, client=None, gig_id=None, headers=None, save_card=None,
             saved_payment_method_id=None, payment_method_id=None, cvc=None, **extra):
        body: dict = {"gig_id": gig_id if gig_id is not None else gig.pk, **extra}
        if number is not None:
            body["card_details"] = card(number, cvc=cvc)
        if save_card is not None:
            body["save_card"] = save_card
        if saved_payment_method_id is not None:
            body["saved_payment_method_id"] = saved_payment_method_id
        if payment_method_id is not None:
            body["payment_method_id"] = payment_method_id
        return (client or student_client).post(PAY_URL, body, format="json", headers=headers or {})

    return post


@pytest.fixture
def paid(stripe_emulator, client_for, student, gig, make_gig):
    """A real payment through the API (a charge at the emulator) and its booking: for ``gig`` (or
    ``target``, or a new gig of ``price_cents``), by ``student`` (or ``as_student``)."""
    from stripe_payments.models import Payment

    def make(price_cents: int | None = None, *, as_student=None, target=None) -> Payment:
        if target is None:
            target = gig if price_cents is None else make_gig(gig.teacher, price_cents=price_cents)
        response = client_for(as_student or student).post(
            PAY_URL, {"gig_id": target.pk, "card_details": card(VISA)}, format="json")
        assert response.status_code == 200, response.content
        return Payment.objects.get(pk=response.json()["payment_id"])

    return make


# --- Connect and the ledger --------------------------------------------------------------------------------
_account_keys = itertools.count()


def onboard(emulator, teacher, *, complete: bool = True):
    """The teacher's connected account at the emulator (onboarded unless ``complete`` is False),
    and its row as the onboarding service and ``account.updated`` keep it."""
    from stripe_payments import gateway
    from stripe_payments.models import ConnectedAccount

    acct = gateway.account_create(email=teacher.email, teacher_id=teacher.pk,
                                  idempotency_key=f"test-account-{teacher.pk}-{next(_account_keys)}-{time.time_ns()}")
    if complete:
        emulator.complete_onboarding(acct.id)
    fresh = gateway.account_retrieve(acct.id)
    return ConnectedAccount.objects.create(
        teacher=teacher, stripe_account_id=acct.id, charges_enabled=fresh.charges_enabled,
        payouts_enabled=fresh.payouts_enabled, details_submitted=fresh.details_submitted,
        transfers_active=fresh.transfers_active, requirements_due=fresh.requirements_due)


def ledger_balances(teacher) -> tuple[int, int, int]:
    """(platform fees, owed, paid) of the teacher's payments in the ledger."""
    from stripe_payments.models import LedgerAccount
    from stripe_payments.services import ledger

    return (ledger.balance(account=LedgerAccount.PLATFORM_FEES, teacher_id=teacher.pk),
            ledger.balance(account=LedgerAccount.TEACHER_OWED, teacher_id=teacher.pk),
            ledger.balance(account=LedgerAccount.TEACHER_PAID, teacher_id=teacher.pk))


def account_net(account_id: str) -> int:
    """The connected account's balance at Stripe, its own payouts aside: what the teacher got."""
    from stripe_payments import gateway

    return sum(t.net for t in gateway.balance_transactions_all(account_id=account_id)
               if t.type not in ("payout", "payout_cancel", "payout_failure"))


def assert_ledger_ok(*, with_stripe: bool = True) -> None:
    from stripe_payments.services import ledger

    report = ledger.check()
    if with_stripe:
        ledger.compare_with_stripe(report)
    assert report.ok, report.differences


def date_movement(movement_prefix: str, when) -> None:
    """Date the rows of a movement (the ledger's save() refuses updates; a queryset update is the fixture)."""
    from stripe_payments.models import LedgerEntry

    assert LedgerEntry.objects.filter(movement__startswith=movement_prefix).update(created_at=when) > 0


def ledger_transfer(payment, when):
    """A paid payout of the payment's whole share, with its ledger movement, dated ``when``."""
    from stripe_payments.models import TeacherTransfer
    from stripe_payments.services import ledger

    row = TeacherTransfer.objects.create(payment=payment, teacher=payment.teacher, stripe_account_id="acct_test",
                                         kind="payout", status="paid", amount_cents=payment.teacher_amount_cents,
                                         stripe_transfer_id=f"tr_test_{payment.pk}")
    ledger.post_transfer(transfer=row, payment=payment)
    date_movement(f"transfer:{row.pk}", when)
    return row


def ledger_refund(payment, amount_cents: int, when) -> None:
    """A refund of ``amount_cents`` (the payment's first) in the ledger, dated ``when``."""
    from stripe_payments.models import RefundRequest
    from stripe_payments.money import split_refunded
    from stripe_payments.services import ledger

    request = RefundRequest.objects.create(payment=payment, amount_cents=amount_cents, requested_by=payment.student)
    split = split_refunded(amount_cents=payment.amount_cents, admin_fee_cents=payment.admin_fee_cents,
                           refunded_cents=amount_cents)
    ledger.post_refund(payment=payment, refund=request, fee_cents=split.admin_fee_cents,
                       share_cents=split.teacher_amount_cents)
    date_movement(f"refund:{request.pk}", when)


@pytest.fixture
def ledger_charge(make_paid_booking, make_gig, student):
    """A succeeded payment (the model, no Stripe) for ``teacher``'s new gig, its charge in the ledger dated ``when``."""
    from stripe_payments.services import ledger

    def make(teacher, price_cents: int, when):
        payment = make_paid_booking(student=student, gig=make_gig(teacher, price_cents=price_cents)).payment
        ledger.post_charge(payment=payment)
        date_movement(f"charge:{payment.pk}", when)
        return payment

    return make
