"""Every workflow that moves money: cards, payments (pay → book), settling intents.

Rules that hold throughout:
- The Payment row is committed (``processing``) before Stripe is called, and Stripe's idempotency
  key is derived from it, so a retry can never charge twice.
- A succeeded payment and its booking are written in one transaction, under the payment's row lock,
  through ``bookings.services``; settling is idempotent, whoever comes first (the API answer, the
  3-D Secure return page, the webhook, reconciliation).
- Card numbers and CVCs exist only in memory for the one Stripe call (``CardInput``).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.views.decorators.debug import sensitive_variables

from bookings import notifications as booking_notifications
from bookings.services import booking_create_for_payment
from gigs.models import Gig
from linguaflex.errors import DomainError, Forbidden, InvalidState, NotFound

from . import gateway, keys, notifications
from .cards import CardInput, card_brand
from .gateway import CardError, IntentResult, SetupResult
from .models import Payment, PaymentMethodOwner, PaymentStatus, SavedPaymentMethod, StripeCustomer
from .money import split_amount

logger = logging.getLogger(__name__)

RETURN_PATH = "/stripe-payments/payment-return/"


class AuthenticationRequired(DomainError):
    """402: the card needs 3-D Secure; the client opens ``redirect_url`` (or uses ``client_secret``)."""

    status_code = 402
    code = "authentication_required"
    message = "This card requires authentication. Open redirect_url to complete 3-D Secure."


def _return_url() -> str:
    return f"{settings.PUBLIC_BASE_URL}{RETURN_PATH}"


def _ensure_student(user) -> None:
    if not user.is_student:
        raise Forbidden("Only students can pay and manage cards.")


# --- customers and saved cards -------------------------------------------------------------------------
def _customer_id_of(user) -> str | None:
    """The user's Stripe customer id, if one was created (no Stripe call)."""
    return StripeCustomer.objects.filter(user=user).values_list("stripe_customer_id", flat=True).first()


def customer_get_or_create(*, user) -> str:
    """The user's Stripe customer id; created at Stripe on first use (a stable idempotency key)."""
    existing = _customer_id_of(user)
    if existing:
        return existing
    customer_id = gateway.customer_create(email=user.email, user_id=user.pk, idempotency_key=keys.customer_key(user))
    try:
        with transaction.atomic():
            StripeCustomer.objects.create(user=user, stripe_customer_id=customer_id)
    except IntegrityError:
        pass  # a concurrent request recorded it first; Stripe returned the same customer to both
    return StripeCustomer.objects.get(user=user).stripe_customer_id


# --- whose card is it ------------------------------------------------------------------------------------
def payment_method_claim(*, user, payment_method_id: str) -> bool:
    """Record that ``user`` owns the PaymentMethod, unless someone already does. True if it is theirs."""
    try:
        with transaction.atomic():
            owner, _ = PaymentMethodOwner.objects.get_or_create(
                stripe_payment_method_id=payment_method_id, defaults={"user_id": user.pk})
    except IntegrityError:  # a concurrent claim won
        owner = PaymentMethodOwner.objects.get(stripe_payment_method_id=payment_method_id)
    return owner.user_id == user.pk


def _ensure_own_payment_method(*, student, payment_method_id: str) -> None:
    """A card id is usable only by the student it was made for: another's is a 404 with no Stripe
    call. One a Stripe client SDK made, never seen here, is looked up once and claimed by its first
    user, unless Stripe has it attached to somebody else's customer."""
    owner_id = PaymentMethodOwner.objects.filter(
        stripe_payment_method_id=payment_method_id).values_list("user_id", flat=True).first()
    if owner_id is not None:
        if owner_id != student.pk:
            raise NotFound("Payment method not found.")
        return
    try:
        info = gateway.payment_method_retrieve(payment_method_id)
    except gateway.ProviderInvalidRequest as exc:
        if exc.stripe_code == "resource_missing":
            raise NotFound("Payment method not found.") from None
        raise
    if info.customer_id and info.customer_id != _customer_id_of(student):
        raise NotFound("Payment method not found.")
    if not payment_method_claim(user=student, payment_method_id=payment_method_id):
        raise NotFound("Payment method not found.")


def _save_card(*, user, pm: gateway.PaymentMethodInfo) -> tuple[SavedPaymentMethod, bool]:
    """Record an attached card once per fingerprint. Returns (saved card, created)."""
    card = pm.card
    if card is None:
        raise gateway.ProviderError("The payment provider returned a card without details.")
    with transaction.atomic():
        # The user's row lock serializes this user's card saves: the fingerprint and default checks
        # below cannot race (two first cards saved at once both became the default before).
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        existing = SavedPaymentMethod.objects.filter(stripe_payment_method_id=pm.id).first()
        if existing is not None and existing.user_id != user.pk:
            raise NotFound("Payment method not found.")  # never another student's card
        if existing is None and card.fingerprint:
            existing = SavedPaymentMethod.objects.filter(user=user, fingerprint=card.fingerprint).first()
        if existing is not None:
            return existing, False
        has_default = SavedPaymentMethod.objects.filter(user=user, is_default=True).exists()
        saved = SavedPaymentMethod.objects.create(
            user=user, stripe_payment_method_id=pm.id, brand=card.brand, last4=card.last4,
            exp_month=card.exp_month, exp_year=card.exp_year, fingerprint=card.fingerprint,
            is_default=not has_default,
        )
    return saved, True


@dataclass(frozen=True)
class AddedCard:
    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    saved: bool


def _detach_duplicate(pm_id: str) -> None:
    try:
        gateway.payment_method_detach(pm_id, idempotency_key=f"lf-detach-{pm_id}")
    except gateway.GatewayError as exc:  # the saved twin is the answer; the orphan is harmless
        logger.warning("could not detach duplicate card %s: %s", pm_id, exc.code)


@sensitive_variables("card")
def payment_method_add(*, user, card: CardInput, save_for_future: bool, idempotency_key: str | None) -> AddedCard:
    """Validate a card at Stripe with one confirmed SetupIntent (plus a customer on the first card).

    Saved: attached to the user's customer and recorded once per fingerprint. Not saved: set up
    without a customer, its id returned for a single later payment."""
    _ensure_student(user)
    key_part = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32] if idempotency_key else uuid.uuid4().hex
    customer_id = customer_get_or_create(user=user) if save_for_future else None
    try:
        result = gateway.setup_intent_create(
            customer_id=customer_id, card=card, return_url=_return_url(),
            idempotency_key=keys.user_scoped_key(user, "setup", key_part),
            metadata={"user_id": str(user.pk), "save": "true" if save_for_future else "false"},
        )
    except CardError as exc:
        raise CardError(exc.message, code=exc.code, decline_code=exc.decline_code,
                        setup_intent_id=exc.setup_intent_id) from None
    return _added_card_from_setup(user=user, result=result, save=save_for_future)


def _added_card_from_setup(*, user, result: SetupResult, save: bool) -> AddedCard:
    if result.payment_method is not None:
        payment_method_claim(user=user, payment_method_id=result.payment_method.id)
    if result.status == "requires_action":
        raise AuthenticationRequired(extra={
            "setup_intent_id": result.id, "client_secret": result.client_secret, "redirect_url": result.redirect_url,
        })
    if result.status != "succeeded" or result.payment_method is None or result.payment_method.card is None:
        failure = result.last_error
        raise CardError(failure.message if failure else "The card could not be set up.",
                        code=failure.code if failure else "card_declined",
                        decline_code=failure.decline_code if failure else None, setup_intent_id=result.id)
    pm = result.payment_method
    card = pm.card
    if not save:
        return AddedCard(pm.id, card.brand, card.last4, card.exp_month, card.exp_year, saved=False)
    saved, created = _save_card(user=user, pm=pm)
    if not created and saved.stripe_payment_method_id != pm.id:
        _detach_duplicate(pm.id)
    return AddedCard(saved.stripe_payment_method_id, saved.brand, saved.last4, saved.exp_month, saved.exp_year, saved=True)


def setup_intent_settle(*, setup_intent_id: str) -> tuple[SetupResult, SavedPaymentMethod | None]:
    """After 3-D Secure (return page or ``setup_intent.succeeded``): save the card once."""
    result = gateway.setup_intent_retrieve(setup_intent_id)
    owner = get_user_model().objects.filter(pk=int(raw)).first() if (raw := result.metadata.get("user_id", "")).isdigit() \
        else None
    if result.payment_method is not None and owner is not None:
        payment_method_claim(user=owner, payment_method_id=result.payment_method.id)
    if result.status != "succeeded" or result.payment_method is None or result.metadata.get("save") == "false":
        return result, None
    customer = StripeCustomer.objects.select_related("user").filter(stripe_customer_id=result.customer_id).first()
    if customer is None:
        return result, None
    if result.payment_method.customer_id != result.customer_id:
        # Detached since (the student deleted it): a late or replayed event must not bring it back.
        return result, None
    saved, _ = _save_card(user=customer.user, pm=result.payment_method)
    return result, saved


def payment_method_set_default(*, user, payment_method_id: str) -> SavedPaymentMethod:
    with transaction.atomic():
        cards = list(SavedPaymentMethod.objects.select_for_update().filter(user=user))
        target = next((c for c in cards if c.stripe_payment_method_id == payment_method_id), None)
        if target is None:
            raise NotFound("Payment method not found.")
        SavedPaymentMethod.objects.filter(user=user, is_default=True).exclude(pk=target.pk).update(is_default=False)
        if not target.is_default:
            target.is_default = True
            target.save(update_fields=["is_default"])
    return target


def payment_method_delete(*, user, payment_method_id: str) -> None:
    saved = SavedPaymentMethod.objects.filter(user=user, stripe_payment_method_id=payment_method_id).first()
    if saved is None:
        raise NotFound("Payment method not found.")
    try:
        gateway.payment_method_detach(payment_method_id, idempotency_key=f"lf-detach-{payment_method_id}")
    except gateway.ProviderInvalidRequest as exc:
        if exc.stripe_code != "resource_missing" and "not attached" not in exc.message.lower():
            raise
        # Already detached or gone at Stripe: forgetting it here is what the user asked.
    with transaction.atomic():
        SavedPaymentMethod.objects.filter(pk=saved.pk).delete()
        if saved.is_default:
            newest = SavedPaymentMethod.objects.select_for_update().filter(user=user).order_by("-created_at", "-id").first()
            if newest is not None:
                SavedPaymentMethod.objects.filter(pk=newest.pk).update(is_default=True)


# --- payments ------------------------------------------------------------------------------------------
def _payable_gig(gig_id: int) -> Gig:
    gig = Gig.objects.select_related("teacher").filter(pk=gig_id, is_active=True).first()
    if gig is None:
        raise NotFound("Gig not found.")
    return gig


def _new_payment(*, student, gig: Gig, save_card: bool, scheduled_at: datetime | None,
                 brand: str = "", last4: str = "", pm_id: str = "", customer_id: str = "") -> Payment:
    split = split_amount(gig.price_cents)  # the gig's price, never the client's
    return Payment.objects.create(
        student=student, teacher=gig.teacher, gig=gig, amount_cents=gig.price_cents,
        admin_fee_cents=split.admin_fee_cents, teacher_amount_cents=split.teacher_amount_cents,
        currency="usd", status=PaymentStatus.PROCESSING, save_card=save_card, scheduled_at=scheduled_at,
        card_brand=brand, card_last4=last4, stripe_payment_method_id=pm_id, stripe_customer_id=customer_id,
    )


def _metadata(payment: Payment) -> dict[str, str]:
    return {"payment_id": str(payment.pk), "gig_id": str(payment.gig_id), "student_id": str(payment.student_id)}


def _description(payment: Payment) -> str:
    """Ids only: a retry under the same Stripe key must send the same parameters (a title can change)."""
    return f"LinguaFlex payment {payment.pk} (gig {payment.gig_id})"


def _stripe_key(payment: Payment, step: str = "create") -> str:
    return keys.payment_key(payment, step)


@sensitive_variables("card")
def payment_process(*, student, gig_id: int, card: CardInput | None = None, saved_payment_method_id: str | None = None,
                    payment_method_id: str | None = None, save_card: bool = False,
                    scheduled_at: datetime | None = None, resume: Payment | None = None,
                    remember=None) -> Payment:
    """Pay for a gig with a new card, a saved card or a client-created PaymentMethod: one Stripe call.

    Returns the payment (succeeded with its booking, or processing). Raises ``CardError`` (402,
    the payment failed), ``AuthenticationRequired`` (402, 3-D Secure), or a provider error (5xx,
    the payment stays processing for the webhook or reconciliation).

    ``resume`` is the payment an earlier attempt of the same request (same Idempotency-Key and
    body) left behind: it is charged again with the parameters frozen on its row, under the same
    Stripe key, or answered as it has settled meanwhile."""
    _ensure_student(student)
    if sum(x is not None for x in (card, saved_payment_method_id, payment_method_id)) != 1:
        raise DomainError("Send exactly one of card_details, saved_payment_method_id or payment_method_id.")
    if resume is not None and resume.student_id == student.pk:
        resume = _reopen_if_never_sent(resume)
        if resume.status != PaymentStatus.PROCESSING:
            return _outcome(resume)
        return _charge(resume, card=card, off_session=saved_payment_method_id is not None)
    gig = _payable_gig(gig_id)
    if payment_method_id is not None:
        _ensure_own_payment_method(student=student, payment_method_id=payment_method_id)
    saved = None
    if saved_payment_method_id is not None:
        saved = SavedPaymentMethod.objects.filter(user=student, stripe_payment_method_id=saved_payment_method_id).first()
        if saved is None:
            raise NotFound("Saved payment method not found.")
        save_card = False
    if save_card or saved is not None:
        customer_id = customer_get_or_create(user=student)
    else:
        customer_id = _customer_id_of(student)
    if saved is not None:
        brand, last4, pm_id = saved.brand, saved.last4, saved.stripe_payment_method_id
    elif card is not None:
        brand, last4, pm_id = card_brand(card.number), card.last4, ""
    else:
        brand, last4, pm_id = "", "", payment_method_id or ""
    payment = _new_payment(student=student, gig=gig, save_card=save_card, scheduled_at=scheduled_at,
                           brand=brand, last4=last4, pm_id=pm_id, customer_id=customer_id or "")
    if remember is not None:
        remember(payment)
    return _charge(payment, card=card, off_session=saved is not None)


@sensitive_variables("card")
def _charge(payment: Payment, *, card: CardInput | None, off_session: bool) -> Payment:
    """The one Stripe call of a payment, with parameters taken from its row (and the card)."""
    try:
        intent = gateway.payment_intent_create(
            amount_cents=payment.amount_cents, idempotency_key=_stripe_key(payment), metadata=_metadata(payment),
            customer_id=payment.stripe_customer_id or None, card=card,
            payment_method_id=None if card is not None else (payment.stripe_payment_method_id or None),
            save_card=payment.save_card, off_session=off_session, return_url=_return_url(),
            description=_description(payment),
        )
    except CardError as exc:
        _mark_failed(payment.pk, code=exc.code, decline_code=exc.decline_code, message=exc.message,
                     payment_intent_id=exc.payment_intent_id)
        raise CardError(exc.message, code=exc.code, decline_code=exc.decline_code,
                        payment_intent_id=exc.payment_intent_id,
                        extra={"payment_id": payment.pk, "payment_intent_id": exc.payment_intent_id}) from None
    except gateway.ProviderInvalidRequest as exc:
        _mark_failed(payment.pk, code="invalid_request", decline_code=None, message=exc.message, payment_intent_id=None)
        raise
    return _outcome(payment_settle_from_intent(payment_id=payment.pk, intent=intent), intent=intent)


NEVER_SENT = "not_charged"  # the failure code reconciliation gives a payment Stripe never received


def _reopen_if_never_sent(payment: Payment) -> Payment:
    """A retry of the request whose payment reconciliation closed as never sent to Stripe: that
    payment is tried again, under its own Stripe key (so if Stripe did get it after all, the same
    PaymentIntent comes back), instead of answering a failure the client never caused."""
    if payment.status != PaymentStatus.FAILED or payment.failure_code != NEVER_SENT:
        return payment
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status == PaymentStatus.FAILED and payment.failure_code == NEVER_SENT:
            payment.status = PaymentStatus.PROCESSING
            payment.failure_code = payment.decline_code = payment.failure_message = ""
            payment.save(update_fields=["status", "failure_code", "decline_code", "failure_message", "updated_at"])
    return payment


def _outcome(payment: Payment, *, intent: IntentResult | None = None) -> Payment:
    """The API's answer for a payment: the payment itself, or the 402/409 its state calls for."""
    if payment.status == PaymentStatus.REQUIRES_ACTION:
        if intent is None:
            intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)
        raise AuthenticationRequired(extra={
            "payment_id": payment.pk, "payment_intent_id": intent.id,
            "client_secret": intent.client_secret, "redirect_url": intent.redirect_url,
        })
    if payment.status == PaymentStatus.FAILED:
        raise CardError(payment.failure_message or "The card was declined.", code=payment.failure_code or "card_declined",
                        decline_code=payment.decline_code or None, payment_intent_id=payment.stripe_payment_intent_id,
                        extra={"payment_id": payment.pk, "payment_intent_id": payment.stripe_payment_intent_id})
    if payment.status == PaymentStatus.CANCELED:
        raise InvalidState("The payment was canceled.", extra={"status": payment.status})
    return payment


def _mark_failed(payment_id: int, *, code: str, decline_code: str | None, message: str,
                 payment_intent_id: str | None) -> None:
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.status not in (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION):
            return
        payment.status = PaymentStatus.FAILED
        payment.failure_code = code[:64]
        payment.decline_code = (decline_code or "")[:64]
        payment.failure_message = message[:500]
        fields = ["status", "failure_code", "decline_code", "failure_message", "updated_at"]
        if payment_intent_id and not payment.stripe_payment_intent_id:
            payment.stripe_payment_intent_id = payment_intent_id
            fields.append("stripe_payment_intent_id")
        payment.save(update_fields=fields)


# Stripe's PaymentIntent status -> ours, for an unsettled payment.
_INTENT_STATUS = {
    "succeeded": PaymentStatus.SUCCEEDED,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "processing": PaymentStatus.PROCESSING,
    "canceled": PaymentStatus.CANCELED,
}


def payment_settle_from_intent(*, payment_id: int, intent: IntentResult) -> Payment:
    """Bring an unsettled payment in line with its PaymentIntent. Idempotent; never moves a
    settled payment backwards. A success writes the payment and its booking in one transaction."""
    saved_pm = None
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.stripe_payment_intent_id and payment.stripe_payment_intent_id != intent.id:
            raise InvalidState("This PaymentIntent belongs to another payment.")
        if payment.status not in (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION, PaymentStatus.FAILED):
            return payment
        if payment.status == PaymentStatus.FAILED and intent.status != "succeeded":
            return payment
        fields = {"updated_at"}
        if not payment.stripe_payment_intent_id:
            payment.stripe_payment_intent_id = intent.id
            fields.add("stripe_payment_intent_id")
        if intent.payment_method is not None:
            payment_method_claim(user=payment.student, payment_method_id=intent.payment_method.id)
            payment.stripe_payment_method_id = intent.payment_method.id
            fields.add("stripe_payment_method_id")
            if intent.payment_method.card is not None:
                payment.card_brand = intent.payment_method.card.brand
                payment.card_last4 = intent.payment_method.card.last4
                fields.update({"card_brand", "card_last4"})
        if intent.status == "requires_payment_method" and intent.last_error is not None:
            new_status = PaymentStatus.FAILED
            payment.failure_code = intent.last_error.code[:64]
            payment.decline_code = (intent.last_error.decline_code or "")[:64]
            payment.failure_message = intent.last_error.message[:500]
            fields.update({"failure_code", "decline_code", "failure_message"})
        else:
            new_status = _INTENT_STATUS.get(intent.status, payment.status)
        if new_status == PaymentStatus.SUCCEEDED:
            payment.failure_code = payment.decline_code = payment.failure_message = ""
            payment.stripe_charge_id = intent.latest_charge_id or ""
            fields.update({"failure_code", "decline_code", "failure_message", "stripe_charge_id"})
        payment.status = new_status
        fields.add("status")
        payment.save(update_fields=sorted(fields))
        if new_status == PaymentStatus.SUCCEEDED:
            booking, created = booking_create_for_payment(payment=payment)
            if created:
                notifications.payment_receipt(payment_id=payment.pk)
                booking_notifications.booking_created(booking_id=booking.pk)
            card = intent.payment_method.card if intent.payment_method is not None else None
            if payment.save_card and card is not None:
                saved_pm, _ = _save_card(user=payment.student, pm=intent.payment_method)
            # Saved now, or the same card typed in again: it is among the student's saved cards.
            if saved_pm is not None or (card is not None and card.fingerprint and SavedPaymentMethod.objects.filter(
                    user_id=payment.student_id, fingerprint=card.fingerprint).exists()):
                payment.payment_method_saved = True
                payment.save(update_fields=["payment_method_saved"])
    if saved_pm is not None and saved_pm.stripe_payment_method_id != payment.stripe_payment_method_id:
        transaction.on_commit(lambda: _detach_duplicate(payment.stripe_payment_method_id))
    return payment


def payment_method_saved_for(payment: Payment) -> bool:
    """True when the card used is among the student's saved cards after this payment."""
    if payment.payment_method_saved:
        return True
    if not payment.stripe_payment_method_id:
        return False
    return SavedPaymentMethod.objects.filter(
        user_id=payment.student_id, stripe_payment_method_id=payment.stripe_payment_method_id).exists()


def payment_settle(*, payment: Payment) -> Payment:
    """Re-read the PaymentIntent from Stripe and settle (return page, webhook, reconciliation)."""
    if not payment.stripe_payment_intent_id:
        return payment
    intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)
    return payment_settle_from_intent(payment_id=payment.pk, intent=intent)


def payment_settle_by_intent_id(*, payment_intent_id: str) -> Payment | None:
    payment = Payment.objects.filter(stripe_payment_intent_id=payment_intent_id).first()
    if payment is None:
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
        return payment_settle_from_intent(payment_id=payment.pk, intent=intent)
    return payment_settle(payment=payment)


# --- the client-side flow (Stripe's mobile or JS SDKs confirm) -----------------------------------
@dataclass(frozen=True)
class CreatedIntent:
    payment: Payment
    client_secret: str


def payment_intent_create_for_client(*, student, gig_id: int, resume: Payment | None = None,
                                     remember=None) -> CreatedIntent:
    _ensure_student(student)
    payment = _reopen_if_never_sent(resume) if resume is not None and resume.student_id == student.pk else None
    if payment is None:
        gig = _payable_gig(gig_id)
        customer_id = _customer_id_of(student)
        payment = _new_payment(student=student, gig=gig, save_card=False, scheduled_at=None,
                               customer_id=customer_id or "")
        if remember is not None:
            remember(payment)
    intent = gateway.payment_intent_create(
        amount_cents=payment.amount_cents, idempotency_key=_stripe_key(payment), metadata=_metadata(payment),
        customer_id=payment.stripe_customer_id or None, confirm=False,
        description=_description(payment),
    )
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if not payment.stripe_payment_intent_id:
            payment.stripe_payment_intent_id = intent.id
            payment.save(update_fields=["stripe_payment_intent_id", "updated_at"])
    return CreatedIntent(payment=payment, client_secret=intent.client_secret or "")


def payment_confirm_for_client(*, student, payment_intent_id: str) -> Payment:
    """Settle a client-confirmed PaymentIntent from Stripe's state."""
    _ensure_student(student)
    payment = Payment.objects.filter(student=student, stripe_payment_intent_id=payment_intent_id).first()
    if payment is None:
        raise NotFound("Payment not found.")
    intent = gateway.payment_intent_retrieve(payment_intent_id)
    payment = _outcome(payment_settle_from_intent(payment_id=payment.pk, intent=intent), intent=intent)
    if payment.status == PaymentStatus.PROCESSING:
        raise InvalidState(f"The payment is {payment.status}; Stripe says {intent.status}.",
                           extra={"status": payment.status})
    return payment
