"""Paying for a gig: with a new card, a saved card or a client-created PaymentMethod (one Stripe
call), 3-D Secure's return, and the client-side flow (create an intent, the app confirms it).

Rules that hold throughout:
- The Payment row is committed (``processing``), holding the client's Idempotency-Key, before
  Stripe is called, and Stripe's idempotency key is derived from the row: a retry of the same
  request finds that payment by its key and resumes it, so Stripe never charges twice.
- Every status change goes through ``lifecycle`` (settle, fail, reopen).
- Card numbers and CVCs exist only in memory for the one Stripe call (``CardInput``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import OuterRef
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from gigs.models import Gig
from linguaflex.errors import InvalidState, NotFound

from .. import gateway, keys, selectors
from ..cards import CardInput, card_brand
from ..gateway import CardError, CardFailure, IntentResult
from ..models import Payment, PaymentStatus
from ..money import split_amount
from . import cards, lifecycle, payouts
from .common import AuthenticationRequired, ensure_student, return_url, with_request_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PaymentOutcome:
    """A payment as the payment endpoints answer it (ProcessPaymentOutputSerializer)."""

    payment: Payment
    payment_method_saved: bool

    @property
    def success(self) -> bool:
        return self.payment.status == PaymentStatus.SUCCEEDED

    @property
    def message(self) -> str:
        return "Payment processed successfully" if self.success else f"Payment is {self.payment.status}"

    @property
    def booking_id(self) -> int | None:
        return selectors.booking_id_of(self.payment)


def _answer(payment: Payment) -> PaymentOutcome:
    return PaymentOutcome(payment, payment_method_saved=selectors.payment_card_saved(payment))


# --- the client's Idempotency-Key on the payment row ---------------------------------------------------
def _payment_for_key(*, student, key: str | None) -> Payment | None:
    """The payment an earlier attempt of this request left (its answer was a 5xx, or its worker died).
    A key is kept 24 hours, as the Idempotency-Key layer keeps it: an older payment lets it go."""
    if not key:
        return None
    payment = Payment.objects.filter(student=student, idempotency_key=key).first()
    if payment is not None and payment.created_at < timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS):
        Payment.objects.filter(pk=payment.pk, idempotency_key=key).update(idempotency_key=None)
        return None
    return payment


def _payable_gig(gig_id: int) -> Gig:
    """The gig, its teacher, and the teacher's connected account id (``destination_account_id``,
    "" for none): one query."""
    gig = (Gig.objects.select_related("teacher").filter(pk=gig_id, is_active=True)
           .annotate(destination_account_id=payouts.destination_subquery(OuterRef("teacher_id"))).first())
    if gig is None:
        raise NotFound("Gig not found.")
    return gig


def _new_payment(*, student, gig: Gig, idempotency_key: str | None, save_card: bool = False,
                 scheduled_at: datetime | None = None, brand: str = "", last4: str = "", pm_id: str = "",
                 customer_id: str = "", payment_method_saved: bool = False) -> Payment:
    split = split_amount(gig.price_cents)  # the gig's price, never the client's
    try:
        with transaction.atomic():
            return Payment.objects.create(
                student=student, teacher=gig.teacher, gig=gig, amount_cents=gig.price_cents,
                admin_fee_cents=split.admin_fee_cents, teacher_amount_cents=split.teacher_amount_cents,
                currency="usd", status=PaymentStatus.PROCESSING, save_card=save_card, scheduled_at=scheduled_at,
                card_brand=brand, card_last4=last4, stripe_payment_method_id=pm_id, stripe_customer_id=customer_id,
                payment_method_saved=payment_method_saved, idempotency_key=idempotency_key or None,
                destination_account_id=gig.destination_account_id or "",
            )
    except IntegrityError:
        if not idempotency_key:
            raise
        # The key's unique constraint: a twin of this request got there first (that is the payment),
        # or a payment older than the key's 24 hours still holds it (let go: this one takes it).
        twin = _payment_for_key(student=student, key=idempotency_key)
        if twin is not None:
            return twin
        return _new_payment(student=student, gig=gig, idempotency_key=idempotency_key, save_card=save_card,
                            scheduled_at=scheduled_at, brand=brand, last4=last4, pm_id=pm_id,
                            customer_id=customer_id, payment_method_saved=payment_method_saved)


def _metadata(payment: Payment) -> dict[str, str]:
    """From the row only: every retry under the payment's Stripe key sends the same metadata,
    the creating request's id included (followed from the API call to Stripe and back)."""
    metadata = {"payment_id": str(payment.pk), "gig_id": str(payment.gig_id), "student_id": str(payment.student_id)}
    return with_request_id(metadata, payment.request_id)


def _destination(payment: Payment) -> dict:
    """A destination charge's parameters, frozen on the row: the share goes to the teacher's
    connected account in the same call and the platform's fee comes back (never a second call)."""
    if not payment.destination_account_id:
        return {}
    return {"destination_account_id": payment.destination_account_id,
            "application_fee_cents": payment.admin_fee_cents}


def _description(payment: Payment) -> str:
    """Ids only: a retry under the same Stripe key must send the same parameters (a title can change)."""
    return f"LinguaFlex payment {payment.pk} (gig {payment.gig_id})"


# --- paying for a gig -----------------------------------------------------------------------------------
@sensitive_variables("card")
def payment_process(*, student, gig_id: int, card: CardInput | None = None, saved_payment_method_id: str | None = None,
                    payment_method_id: str | None = None, save_card: bool = False,
                    scheduled_at: datetime | None = None, idempotency_key: str | None = None,
                    key_is_new: bool = False) -> PaymentOutcome:
    """Pay for a gig with exactly one of a new card, a saved card or a client-created PaymentMethod
    (the input serializer guarantees it): one Stripe call.

    Returns the payment (succeeded with its booking, or processing). Raises ``CardError`` (402,
    the payment failed), ``AuthenticationRequired`` (402, 3-D Secure), or a provider error (5xx,
    the payment stays processing for a retry, the webhook or reconciliation).

    A retry with the same ``idempotency_key`` resumes the payment the first attempt left: charged
    again with the parameters frozen on its row, under the same Stripe key, or answered as it has
    settled meanwhile. ``key_is_new``: the Idempotency-Key layer has just recorded the key, so no
    earlier attempt can have left a payment under it (no look-up; the key's unique constraint still
    stands guard in ``_new_payment``)."""
    ensure_student(student)
    resumed = None if key_is_new else _payment_for_key(student=student, key=idempotency_key)
    if resumed is not None:
        resumed = lifecycle.payment_reopen_never_sent(payment=resumed)
        if resumed.status != PaymentStatus.PROCESSING:
            return _outcome(resumed)
        return _charge(resumed, card=card, off_session=saved_payment_method_id is not None)
    gig = _payable_gig(gig_id)
    if payment_method_id is not None:
        cards.ensure_own_payment_method(student=student, payment_method_id=payment_method_id)
    saved = None
    if saved_payment_method_id is not None:
        saved = cards.saved_card_of(user=student, payment_method_id=saved_payment_method_id)
        if saved is None:
            raise NotFound("Saved payment method not found.")
        save_card = False
    if saved is not None and saved.customer_id:
        customer_id = saved.customer_id
    elif save_card or saved is not None:
        customer_id = cards.customer_get_or_create(user=student)
    else:
        customer_id = cards.customer_id_of(student)
    if saved is not None:
        brand, last4, pm_id = saved.brand, saved.last4, saved.stripe_payment_method_id
    elif card is not None:
        brand, last4, pm_id = card_brand(card.number), card.last4, ""
    else:
        brand, last4, pm_id = "", "", payment_method_id or ""
    payment = _new_payment(student=student, gig=gig, idempotency_key=idempotency_key, save_card=save_card,
                           scheduled_at=scheduled_at, brand=brand, last4=last4, pm_id=pm_id,
                           customer_id=customer_id or "", payment_method_saved=saved is not None)
    return _charge(payment, card=card, off_session=saved is not None)


@sensitive_variables("card")
def _charge(payment: Payment, *, card: CardInput | None, off_session: bool) -> PaymentOutcome:
    """The one Stripe call of a payment, with parameters taken from its row (and the card)."""
    try:
        intent = gateway.payment_intent_create(
            amount_cents=payment.amount_cents, idempotency_key=keys.payment_key(payment), metadata=_metadata(payment),
            customer_id=payment.stripe_customer_id or None, card=card,
            payment_method_id=None if card is not None else (payment.stripe_payment_method_id or None),
            save_card=payment.save_card, off_session=off_session, return_url=return_url(),
            description=_description(payment), **_destination(payment),
        )
    except CardError as exc:
        lifecycle.payment_fail(payment_id=payment.pk, failure=exc.failure, payment_intent_id=exc.payment_intent_id)
        raise CardError(exc.message, code=exc.code, decline_code=exc.decline_code,
                        payment_intent_id=exc.payment_intent_id,
                        extra={"payment_id": payment.pk, "payment_intent_id": exc.payment_intent_id}) from None
    except gateway.ProviderInvalidRequest as exc:
        lifecycle.payment_fail(payment_id=payment.pk,
                               failure=CardFailure(code="invalid_request", decline_code=None, message=exc.message))
        raise
    return _outcome(lifecycle.payment_settle_new(payment=payment, intent=intent), intent=intent)


def _outcome(payment: Payment, *, intent: IntentResult | None = None) -> PaymentOutcome:
    """The API's answer for a payment: the payment itself, or the 402/409 its state calls for."""
    if payment.status == PaymentStatus.REQUIRES_ACTION:
        if intent is None:
            intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)
        # No redirect_url: Stripe answered use_stripe_sdk (confirmed without a return_url, as
        # Stripe's client SDKs do), which the client completes with the client secret.
        raise AuthenticationRequired(None if intent.redirect_url else cards.SDK_AUTHENTICATION_MESSAGE, extra={
            "payment_id": payment.pk, "payment_intent_id": intent.id,
            "client_secret": intent.client_secret, "redirect_url": intent.redirect_url,
        })
    if payment.status == PaymentStatus.FAILED:
        # CardError's envelope says the student's message for these codes, never Stripe's text.
        raise CardError(payment.provider_failure_message or payment.failure_message or "The card was declined.",
                        code=payment.failure_code or "card_declined",
                        decline_code=payment.decline_code or None, payment_intent_id=payment.stripe_payment_intent_id,
                        extra={"payment_id": payment.pk, "payment_intent_id": payment.stripe_payment_intent_id})
    if payment.status == PaymentStatus.CANCELED:
        raise InvalidState("The payment was canceled.", extra={"status": payment.status})
    return _answer(payment)


# --- settling from Stripe's state (return page, webhooks, reconciliation) --------------------------------
def payment_settle(*, payment: Payment) -> Payment:
    """Re-read the PaymentIntent from Stripe and settle."""
    if not payment.stripe_payment_intent_id:
        return payment
    intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)
    return lifecycle.payment_settle_from_intent(payment_id=payment.pk, intent=intent)


def payment_settle_by_intent_id(*, payment_intent_id: str) -> Payment | None:
    """Settle the payment of a PaymentIntent id (ours by the row, or by the intent's metadata when
    its create answer was lost); None for an intent that is not ours."""
    payment = Payment.objects.filter(stripe_payment_intent_id=payment_intent_id).first()
    if payment is not None:
        return payment_settle(payment=payment)
    try:
        intent = gateway.payment_intent_retrieve(payment_intent_id)
    except gateway.ProviderInvalidRequest as exc:
        if exc.stripe_code == "resource_missing":
            return None  # an id Stripe does not know: the return page answers 404
        raise
    raw_id = intent.metadata.get("payment_id", "")
    payment = Payment.objects.filter(pk=int(raw_id)).first() if raw_id.isdigit() else None
    if payment is None:
        return None
    return lifecycle.payment_settle_from_intent(payment_id=payment.pk, intent=intent)


_RETURN_MESSAGES = {
    PaymentStatus.SUCCEEDED: "Payment complete. Your booking is waiting for the teacher's confirmation.",
    PaymentStatus.FAILED: "Authentication failed or the card was declined. No money was taken.",
    PaymentStatus.REQUIRES_ACTION: "Authentication is not finished yet.",
    PaymentStatus.PROCESSING: "The payment is still processing.",
}


@dataclass(frozen=True)
class PaymentReturn:
    """What the 3-D Secure return page says about a payment (PaymentReturnOutputSerializer)."""

    payment: Payment
    kind: ClassVar[str] = "payment"

    @property
    def success(self) -> bool:
        return self.payment.status == PaymentStatus.SUCCEEDED

    @property
    def status(self) -> str:
        return self.payment.status

    @property
    def message(self) -> str:
        if self.payment.status == PaymentStatus.FAILED and self.payment.failure_message:
            return self.payment.failure_message  # written for the student (decline_messages.py)
        return _RETURN_MESSAGES.get(self.payment.status, f"The payment is {self.payment.status}.")

    @property
    def booking_id(self) -> int | None:
        return selectors.booking_id_of(self.payment)


def payment_return(*, payment_intent_id: str) -> PaymentReturn:
    """Stripe sent the browser back after 3-D Secure: settle from Stripe's state (the booking is
    created once, whoever comes first: this page or the webhook)."""
    payment = payment_settle_by_intent_id(payment_intent_id=payment_intent_id)
    if payment is None:
        raise NotFound("Unknown payment.")
    return PaymentReturn(payment)


# --- the client-side flow (Stripe's mobile or JS SDKs confirm) -----------------------------------
@dataclass(frozen=True)
class CreatedIntent:
    """A PaymentIntent for the app to confirm (CreatePaymentIntentOutputSerializer)."""

    payment: Payment
    client_secret: str


def payment_intent_create_for_client(*, student, gig_id: int, idempotency_key: str | None = None) -> CreatedIntent:
    ensure_student(student)
    payment = _payment_for_key(student=student, key=idempotency_key)
    if payment is not None:
        payment = lifecycle.payment_reopen_never_sent(payment=payment)
    else:
        gig = _payable_gig(gig_id)
        payment = _new_payment(student=student, gig=gig, idempotency_key=idempotency_key,
                               customer_id=cards.customer_id_of(student) or "")
    intent = gateway.payment_intent_create(
        amount_cents=payment.amount_cents, idempotency_key=keys.payment_key(payment), metadata=_metadata(payment),
        customer_id=payment.stripe_customer_id or None, confirm=False,
        description=_description(payment), **_destination(payment),
    )
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if not payment.stripe_payment_intent_id:
            payment.stripe_payment_intent_id = intent.id
            payment.save(update_fields=["stripe_payment_intent_id", "updated_at"])
    return CreatedIntent(payment=payment, client_secret=intent.client_secret or "")


def payment_confirm_for_client(*, student, payment_intent_id: str) -> PaymentOutcome:
    """Settle a client-confirmed PaymentIntent from Stripe's state."""
    ensure_student(student)
    payment = Payment.objects.filter(student=student, stripe_payment_intent_id=payment_intent_id).first()
    if payment is None:
        raise NotFound("Payment not found.")
    intent = gateway.payment_intent_retrieve(payment_intent_id)
    outcome = _outcome(lifecycle.payment_settle_from_intent(payment_id=payment.pk, intent=intent), intent=intent)
    if outcome.payment.status == PaymentStatus.PROCESSING:
        raise InvalidState(f"The payment is {outcome.payment.status}; Stripe says {intent.status}.",
                           extra={"status": outcome.payment.status})
    return outcome
