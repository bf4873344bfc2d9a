"""Cards: the student's Stripe customer, adding and verifying cards (SetupIntents, 3-D Secure),
saved cards once per fingerprint, and whose card each PaymentMethod id is.

Card numbers and CVCs exist only in memory for the one Stripe call (``CardInput``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass
from typing import ClassVar

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.views.decorators.debug import sensitive_variables

from linguaflex import request_id as request_ids
from linguaflex.errors import NotFound

from .. import gateway, keys, selectors
from ..cards import CardInput
from ..decline_messages import customer_message
from ..gateway import CardError, CardFailure, SetupResult
from ..models import PaymentMethodOwner, SavedPaymentMethod, StripeCustomer
from .common import AuthenticationRequired, ensure_student, return_url, with_request_id

logger = logging.getLogger(__name__)


# --- customers and saved cards -------------------------------------------------------------------------
def customer_id_of(user) -> str | None:
    """The user's Stripe customer id, if one was created (no Stripe call)."""
    return StripeCustomer.objects.filter(user=user).values_list("stripe_customer_id", flat=True).first()


def saved_card_of(*, user, payment_method_id: str) -> SavedPaymentMethod | None:
    """The user's saved card by its PaymentMethod id, read with the user's customer id
    (``customer_id``): one query for what paying with it needs."""
    customer = StripeCustomer.objects.filter(user_id=OuterRef("user_id")).values("stripe_customer_id")[:1]
    return (SavedPaymentMethod.objects.filter(user=user, stripe_payment_method_id=payment_method_id)
            .annotate(customer_id=Subquery(customer)).first())


def customer_get_or_create(*, user) -> str:
    """The user's Stripe customer id; created at Stripe on first use (a stable idempotency key)."""
    existing = customer_id_of(user)
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
def payment_method_owner_record(*, user_id: int, payment_method_id: str) -> None:
    """Record that the user owns the PaymentMethod unless someone already does, in one statement
    (INSERT ... ON CONFLICT DO NOTHING: no lookup, no savepoint; the first owner stays)."""
    PaymentMethodOwner.objects.bulk_create(
        [PaymentMethodOwner(stripe_payment_method_id=payment_method_id, user_id=user_id)], ignore_conflicts=True)


def payment_method_claim(*, user, payment_method_id: str) -> bool:
    """Record that ``user`` owns the PaymentMethod, unless someone already does. True if it is theirs
    (a concurrent claim's INSERT is waited for by the conflict, then read)."""
    payment_method_owner_record(user_id=user.pk, payment_method_id=payment_method_id)
    owner_id = PaymentMethodOwner.objects.filter(
        stripe_payment_method_id=payment_method_id).values_list("user_id", flat=True).first()
    return owner_id == user.pk


def ensure_own_payment_method(*, student, payment_method_id: str) -> None:
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
    if info.customer_id and info.customer_id != customer_id_of(student):
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
    """A card added (saved) or verified (AddPaymentMethodOutputSerializer)."""

    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    saved: bool
    success: ClassVar[bool] = True

    @property
    def message(self) -> str:
        return "Payment method added successfully" if self.saved else "Payment method verified"


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
    ensure_student(user)
    key_part = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32] if idempotency_key else uuid.uuid4().hex
    customer_id = customer_get_or_create(user=user) if save_for_future else None
    try:
        result = gateway.setup_intent_create(
            customer_id=customer_id, card=card, return_url=return_url(),
            idempotency_key=keys.user_scoped_key(user, "setup", key_part),
            metadata=with_request_id({"user_id": str(user.pk), "save": "true" if save_for_future else "false"},
                                     request_ids.origin()),
        )
    except CardError as exc:
        _log_refused(exc.failure, setup_intent_id=exc.setup_intent_id)
        raise  # its envelope says the student's message (CardError.customer_message)
    return _added_card_from_setup(user=user, result=result, save=save_for_future)


def _log_refused(failure: CardFailure, *, setup_intent_id: str | None) -> None:
    """Stripe's own text about a refused card goes to the log (ids masked by the gateway), not to the client."""
    logger.info("card set-up %s refused: code=%s decline_code=%s provider_message=%r",
                setup_intent_id, failure.code, failure.decline_code, failure.message)


# The 402's message when Stripe's next action is use_stripe_sdk (no redirect_url): the client
# completes 3-D Secure with the intent's client secret in Stripe's SDK.
SDK_AUTHENTICATION_MESSAGE = "This card requires authentication. Complete 3-D Secure with client_secret in Stripe's SDK."


def _added_card_from_setup(*, user, result: SetupResult, save: bool) -> AddedCard:
    if result.payment_method is not None:
        payment_method_owner_record(user_id=user.pk, payment_method_id=result.payment_method.id)
    if result.status == "requires_action":
        raise AuthenticationRequired(None if result.redirect_url else SDK_AUTHENTICATION_MESSAGE, extra={
            "setup_intent_id": result.id, "client_secret": result.client_secret, "redirect_url": result.redirect_url,
        })
    if result.status != "succeeded" or result.payment_method is None or result.payment_method.card is None:
        failure = result.last_error or CardFailure(code="card_declined", decline_code=None,
                                                   message=f"The card could not be set up (SetupIntent {result.status}).")
        _log_refused(failure, setup_intent_id=result.id)
        raise CardError(failure.message, code=failure.code, decline_code=failure.decline_code, setup_intent_id=result.id)
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
        payment_method_owner_record(user_id=owner.pk, payment_method_id=result.payment_method.id)
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


@dataclass(frozen=True)
class CardReturn:
    """What the 3-D Secure return page says about a card set-up (CardReturnOutputSerializer)."""

    status: str
    saved: bool
    payment_method_id: str | None
    failure_message: str = ""  # for the person paying (decline_messages.py), when Stripe said why
    kind: ClassVar[str] = "card"

    @property
    def success(self) -> bool:
        return self.status == "succeeded"

    @property
    def message(self) -> str:
        if not self.success:
            return self.failure_message or "The card could not be authenticated."
        return "Your card is saved." if self.saved else "Your card is verified."


def card_return(*, setup_intent_id: str, client_secret: str) -> CardReturn:
    """Stripe sent the browser back after 3-D Secure of a card: settle (save it once).

    The card's id goes only to the browser Stripe sent back, which carries the SetupIntent's client
    secret: the page is public. A card verified without saving still gets its id, for one payment
    by its own student (process-payment refuses it to anyone else)."""
    try:
        result, saved = setup_intent_settle(setup_intent_id=setup_intent_id)
    except gateway.ProviderInvalidRequest as exc:
        if exc.stripe_code != "resource_missing":
            raise
        raise NotFound("Unknown card set-up.") from None
    ok = result.status == "succeeded"
    reveal = ok and bool(result.client_secret) and hmac.compare_digest(client_secret, result.client_secret or "")
    pm_id = None
    if reveal:
        pm_id = saved.stripe_payment_method_id if saved else (result.payment_method.id if result.payment_method else None)
    failure = result.last_error if not ok else None
    if failure is not None:
        _log_refused(failure, setup_intent_id=result.id)
    return CardReturn(status=result.status, saved=saved is not None, payment_method_id=pm_id,
                      failure_message=customer_message(failure.code, failure.decline_code) if failure else "")


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


def card_keep_after_payment(*, payment, pm: gateway.PaymentMethodInfo | None) -> bool:
    """After a payment succeeded (payment locked by the caller): keep its card if the student
    asked to, detaching a duplicate of a card already saved once the transaction commits. True
    when the card used is among the student's saved cards."""
    card = pm.card if pm is not None else None
    if card is None:
        return False
    if payment.save_card:
        saved, _ = _save_card(user=payment.student, pm=pm)
        if saved.stripe_payment_method_id != pm.id:
            transaction.on_commit(lambda: _detach_duplicate(pm.id))
        return True
    return selectors.card_is_saved(student_id=payment.student_id, payment_method_id=pm.id,
                                   fingerprint=card.fingerprint)
