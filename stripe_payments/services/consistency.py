"""Stripe against the database: every PaymentIntent, charge and refund Stripe lists is compared with
our rows; what one of the owning workflows can put right is repaired, the rest is left for a person.

Stripe is read through the gateway's whole lists (consistent at Stripe, unlike search). The unit of
comparison is one payment: at Stripe its PaymentIntents (``metadata.payment_id``, or the id the
payment records), the latest charge of each and the refunds on its own intent; in the database the
payment, its booking and its refund requests.

- A difference seen in the lists is confirmed on a fresh read of that payment before it is reported,
  so an object created while the lists were being read is no difference.
- A payment with work younger than ``grace`` (its row updated, or one of its intents or refunds
  created at Stripe) is not compared yet: an API request, a webhook or reconciliation may still be
  settling it.
- A repair is the workflow that owns that write (settling, the refund sync, the dispute handler),
  run in a savepoint and followed by a re-check of the payment from a fresh read. It is kept only
  when the re-check finds nothing that was not there before, so ``repaired=True`` means the
  difference is really gone, and a repair that would make things worse (a refund counted twice) is
  undone and left for a person. Repairs are idempotent: a second run finds nothing to repair.

Amounts are integer cents; details name ids, amounts and statuses only, never card data.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from bookings.models import Booking, BookingStatus
from linguaflex.errors import DomainError

from .. import gateway
from ..gateway import ChargeResult, IntentResult, RefundResult
from ..models import CHARGED_STATUSES, Payment, PaymentStatus, RefundRequest, RefundRequestStatus
from . import disputes, lifecycle, refunds

logger = logging.getLogger(__name__)

# Reconciliation's own default window: younger work may still be settling.
SETTLE_GRACE = timedelta(minutes=15)
# With ``since``, Stripe is listed from a little earlier: its clock and ours may differ.
LIST_MARGIN = timedelta(hours=1)
CHUNK = 500  # payments loaded from the database at a time

# Statuses ``payment_settle_from_intent`` moves to succeeded.
SETTLEABLE_STATUSES = (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION, PaymentStatus.FAILED)
# A booking still open although its payment was refunded in full.
OPEN_BOOKING_STATUSES = lifecycle.OPEN_BOOKING_STATUSES
# Stripe's refund status -> the status of the refund request recording it.
REQUEST_STATUS_FOR = {
    "succeeded": RefundRequestStatus.SUCCEEDED,
    "pending": RefundRequestStatus.PENDING,
    "requires_action": RefundRequestStatus.PENDING,
    "failed": RefundRequestStatus.FAILED,
    "canceled": RefundRequestStatus.FAILED,
}
PENDING_REFUND_STATUSES = ("pending", "requires_action")
FINAL_REFUND_STATUSES = ("succeeded", "failed", "canceled")  # what the refund sync records

# The repair steps, run in this order (settle before the refunds: a refund needs a settled payment).
SETTLE, BOOK, SYNC, CLOSE_BOOKING, DISPUTE = "settle", "book", "sync", "close_booking", "dispute"
REPAIR_ORDER = (SETTLE, BOOK, SYNC, CLOSE_BOOKING, DISPUTE)


# --- the report -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Difference:
    kind: str  # a short stable slug, e.g. "refund_unrecorded"
    subject: str  # "payment 12", "refund re_123", "intent pi_123", "booking 4", "refund request 7"
    detail: str  # one line for a person; never card data
    repaired: bool = False  # the repair ran and a re-check found the difference gone
    repairable: bool = False  # a repair exists (not run with repair=False, or it failed)

    def line(self) -> str:
        if self.repaired:
            label = "REPAIRED"
        elif self.repairable:
            label = "NOT REPAIRED"
        else:
            label = "NEEDS A PERSON"
        return f"{label} {self.kind} {self.subject}: {self.detail}"


@dataclass
class ConsistencyReport:
    differences: list[Difference] = field(default_factory=list)
    checked: dict[str, int] = field(
        default_factory=lambda: {"payment_intents": 0, "charges": 0, "refunds": 0, "payments": 0})

    @property
    def unrepaired(self) -> list[Difference]:
        return [d for d in self.differences if not d.repaired]

    def summary(self) -> str:
        c = self.checked
        repaired = len(self.differences) - len(self.unrepaired)
        return (f"checked {c['payment_intents']} payment intent(s), {c['charges']} charge(s), "
                f"{c['refunds']} refund(s), {c['payments']} payment(s): {len(self.differences)} difference(s), "
                f"{repaired} repaired, {len(self.unrepaired)} left unrepaired")


# --- what is compared -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Found:
    """A difference before its repair; ``repairs``: the steps that put it right (none: a person's)."""

    kind: str
    subject: str
    detail: str
    repairs: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.subject

    def difference(self, *, repaired: bool = False, note: str = "") -> Difference:
        return Difference(self.kind, self.subject, self.detail + note, repaired=repaired,
                          repairable=bool(self.repairs))


@dataclass
class _StripeView:
    """What Stripe holds for one payment."""

    intents: dict[str, IntentResult]  # by id: those naming the payment, and the one it records
    charges: dict[str, ChargeResult]  # by id: the latest charge of each intent
    refunds: list[RefundResult]  # on the payment's own intent

    def charge_of(self, intent: IntentResult) -> ChargeResult | None:
        return self.charges.get(intent.latest_charge_id) if intent.latest_charge_id else None

    def settling(self, cutoff: datetime) -> bool:
        ts = cutoff.timestamp()
        return any(i.created > ts for i in self.intents.values()) or any(r.created > ts for r in self.refunds)


@dataclass
class _Rows:
    """What the database holds for one payment."""

    payment: Payment
    booking: Booking | None
    requests: list[RefundRequest]
    recorded_on: dict[str, int]  # a Stripe refund id -> the payment whose refund request records it


def _payment_id_of(intent: IntentResult) -> int | None:
    raw = intent.metadata.get("payment_id", "")
    return int(raw) if raw.isdigit() else None


def _refunded_in_full(view: _StripeView, intent: IntentResult) -> bool:
    charge = view.charge_of(intent)
    return charge is not None and charge.amount > 0 and charge.amount_refunded >= charge.amount


def _differences(rows: _Rows, view: _StripeView) -> list[_Found]:
    """Every difference between one payment's rows and what Stripe holds for it."""
    payment = rows.payment
    recorded_id = payment.stripe_payment_intent_id
    recorded = view.intents.get(recorded_id) if recorded_id else None
    if recorded_id and recorded is None:
        return [_Found("intent_missing_at_stripe", f"payment {payment.pk}",
                       f"the payment ({payment.status}) records {recorded_id}, which Stripe does not have")]
    succeeded = sorted((i for i in view.intents.values() if i.status == "succeeded"), key=lambda i: i.id)
    # The intent the payment is about: its own, or (its create's answer lost) the one that succeeded.
    target = recorded or (succeeded[0] if len(succeeded) == 1 else None)
    found: list[_Found] = []
    if target is not None:
        found += _intent_differences(rows, target)
    found += _extra_charges(payment, view, target, succeeded)
    if recorded is not None:
        found += _refund_differences(rows, view, recorded)
        found += _dispute_differences(rows, view, recorded)
    return found


def _intent_differences(rows: _Rows, intent: IntentResult) -> list[_Found]:
    payment = rows.payment
    subject = f"payment {payment.pk}"
    found = []
    if _payment_id_of(intent) != payment.pk:
        found.append(_Found("intent_payment_mismatch", f"intent {intent.id}",
                            f"recorded on payment {payment.pk}, but its metadata names payment "
                            f"{intent.metadata.get('payment_id') or '(none)'}"))
    if (intent.amount, intent.currency) != (payment.amount_cents, payment.currency):
        found.append(_Found("amount_mismatch", subject,
                            f"{intent.id} is {intent.amount} {intent.currency} at Stripe, the payment "
                            f"{payment.amount_cents} {payment.currency}"))
    if intent.status == "succeeded":
        if payment.status not in CHARGED_STATUSES:
            found.append(_Found(
                "intent_succeeded_unsettled", subject, f"{intent.id} succeeded at Stripe; the payment is {payment.status}",
                (SETTLE,) if payment.status in SETTLEABLE_STATUSES else ()))
        elif rows.booking is None:
            recreated = payment.status == PaymentStatus.SUCCEEDED
            found.append(_Found(
                "intent_succeeded_no_booking", subject,
                f"{intent.id} succeeded and the payment is {payment.status}, but it has no booking"
                + ("" if recreated else " (only a succeeded payment's booking is recreated)"),
                (BOOK,) if recreated else ()))
    elif payment.status in CHARGED_STATUSES:
        found.append(_Found("payment_succeeded_intent_not_succeeded", subject,
                            f"the payment is {payment.status}, but {intent.id} is {intent.status} at Stripe"))
    return found


def _extra_charges(payment: Payment, view: _StripeView, target: IntentResult | None,
                   succeeded: list[IntentResult]) -> list[_Found]:
    """Several intents exist for one payment only when an idempotency key expired between retries.
    One refunded in full at Stripe no longer counts (that is how a person resolves a double charge)."""
    extras = [i for i in succeeded if i is not target and not _refunded_in_full(view, i)]
    charged = extras + ([target] if target is not None and target.status == "succeeded" else [])
    if len(charged) > 1:
        return [_Found("double_charge", f"payment {payment.pk}",
                       f"{len(charged)} PaymentIntents succeeded for this payment: "
                       f"{', '.join(sorted(i.id for i in charged))}")]
    if extras:
        return [_Found("intent_succeeded_untracked", f"intent {extras[0].id}",
                       f"succeeded at Stripe for payment {payment.pk}, which records "
                       f"{payment.stripe_payment_intent_id or 'no PaymentIntent'} ({payment.status})")]
    return []


def _refund_differences(rows: _Rows, view: _StripeView, intent: IntentResult) -> list[_Found]:
    payment = rows.payment
    mine = {r.stripe_refund_id: r for r in rows.requests if r.stripe_refund_id}
    found = []
    counts_change = False  # the refund sync would change what is counted into the payment
    for refund in sorted(view.refunds, key=lambda r: r.id):
        subject = f"refund {refund.id}"
        request = mine.get(refund.id)
        if request is None:
            elsewhere = rows.recorded_on.get(refund.id)
            if elsewhere is not None and elsewhere != payment.pk:
                found.append(_Found("refund_wrong_payment", subject,
                                    f"on {intent.id} (payment {payment.pk}) at Stripe, recorded on payment {elsewhere}"))
            elif refund.status == "succeeded" or refund.status in PENDING_REFUND_STATUSES:
                # The sync records a succeeded refund, and a pending one only for the request it names.
                names_request = refund.metadata.get("refund_request_id", "").isdigit()
                syncs = refund.status == "succeeded" or names_request
                counts_change = counts_change or refund.status == "succeeded"
                found.append(_Found(
                    "refund_unrecorded", subject,
                    f"{refund.status} refund of {refund.amount} cents on payment {payment.pk} has no refund request"
                    + ("" if syncs else "; the sync records a refund issued outside LinguaFlex once it succeeds"),
                    (SYNC,) if syncs else ()))
            continue
        if request.applied != (refund.status == "succeeded"):
            counts_change = True
        expected = REQUEST_STATUS_FOR.get(refund.status, request.status)
        if request.amount_cents != refund.amount:
            found.append(_Found("refund_amount_mismatch", subject,
                                f"Stripe refunded {refund.amount} cents, refund request {request.pk} says "
                                f"{request.amount_cents}"))
        elif request.status != expected:
            found.append(_Found("refund_status_mismatch", subject,
                                f"{refund.status} at Stripe, refund request {request.pk} is {request.status}",
                                (SYNC,) if refund.status in FINAL_REFUND_STATUSES else ()))
    at_stripe = {r.id for r in view.refunds}
    for request in sorted(rows.requests, key=lambda r: r.pk):
        if request.status == RefundRequestStatus.SUCCEEDED and request.stripe_refund_id not in at_stripe:
            subject = f"refund {request.stripe_refund_id}" if request.stripe_refund_id else f"refund request {request.pk}"
            found.append(_Found("refund_unknown_at_stripe", subject,
                                f"refund request {request.pk} of payment {payment.pk} succeeded for "
                                f"{request.amount_cents} cents; Stripe has no such refund on {intent.id}"))
    refunded = sum(r.amount for r in view.refunds if r.status == "succeeded")
    if payment.refunded_cents != refunded:
        found.append(_Found(
            "refunded_cents_mismatch", f"payment {payment.pk}",
            f"Stripe refunded {refunded} cents of {intent.id}, the payment says {payment.refunded_cents}"
            + ("" if counts_change else "; every refund is recorded and counted, so the total needs a person"),
            (SYNC,) if counts_change else ()))
    booking = rows.booking
    if refunded >= payment.amount_cents and booking is not None and booking.status in OPEN_BOOKING_STATUSES:
        found.append(_Found("booking_not_refunded", f"booking {booking.pk}",
                            f"payment {payment.pk} was refunded in full at Stripe, the booking is {booking.status}",
                            (SYNC, CLOSE_BOOKING)))
    return found


def _dispute_differences(rows: _Rows, view: _StripeView, intent: IntentResult) -> list[_Found]:
    charge = view.charge_of(intent)
    if charge is None or not charge.disputed:
        return []
    payment, booking = rows.payment, rows.booking
    booking_open = booking is not None and booking.status != BookingStatus.DISPUTED
    if payment.status == PaymentStatus.DISPUTED and not booking_open and payment.disputes.exists():
        return []
    booking_part = f", booking {booking.pk} is {booking.status}" if booking_open else ""
    return [_Found("dispute_unrecorded", f"payment {payment.pk}",
                   f"charge {charge.id} is disputed at Stripe; the payment is {payment.status}{booking_part}",
                   (DISPUTE,))]


# --- reading Stripe and the database -----------------------------------------------------------------
@dataclass
class _Lists:
    """Stripe's whole lists, indexed."""

    intents: list[IntentResult]
    charges: list[ChargeResult]
    refunds: list[RefundResult]

    def __post_init__(self) -> None:
        self.intent_by_id = {i.id: i for i in self.intents}
        self.charge_by_id = {c.id: c for c in self.charges}
        self.intents_by_payment: dict[int, list[IntentResult]] = defaultdict(list)
        for intent in self.intents:
            payment_id = _payment_id_of(intent)
            if payment_id is not None:
                self.intents_by_payment[payment_id].append(intent)
        self.refunds_by_intent: dict[str, list[RefundResult]] = defaultdict(list)
        for refund in self.refunds:
            if refund.payment_intent_id:
                self.refunds_by_intent[refund.payment_intent_id].append(refund)

    @classmethod
    def read(cls, since: datetime | None) -> _Lists:
        created_gte = int((since - LIST_MARGIN).timestamp()) if since is not None else None

        def recent(objects):  # the list's ``created`` filter, applied here too
            return [o for o in objects if created_gte is None or o.created >= created_gte]

        return cls(intents=recent(gateway.payment_intents_all(created_gte=created_gte)),
                   charges=gateway.charges_all(created_gte=created_gte),
                   refunds=recent(gateway.refunds_all(created_gte=created_gte)))

    def intent_ids_for(self, payment: Payment) -> set[str]:
        ids = {i.id for i in self.intents_by_payment.get(payment.pk, [])}
        if payment.stripe_payment_intent_id:
            ids.add(payment.stripe_payment_intent_id)
        return ids

    def view(self, payment: Payment) -> _StripeView | None:
        """The payment's view from the lists; None when they do not hold all of it (its intent is
        older than ``since``, or missing at Stripe: a fresh read tells)."""
        intents = {}
        for intent_id in self.intent_ids_for(payment):
            intent = self.intent_by_id.get(intent_id)
            if intent is None:
                return None
            intents[intent_id] = intent
        charges = {}
        for intent in intents.values():
            if intent.latest_charge_id:
                charge = self.charge_by_id.get(intent.latest_charge_id)
                if charge is None:
                    return None
                charges[charge.id] = charge
        own = payment.stripe_payment_intent_id
        return _StripeView(intents, charges, list(self.refunds_by_intent.get(own, [])) if own else [])


def _retrieve_intent(intent_id: str) -> IntentResult | None:
    try:
        return gateway.payment_intent_retrieve(intent_id)
    except gateway.ProviderInvalidRequest as exc:
        if exc.stripe_code == "resource_missing":
            return None
        raise


def _fetch_view(payment: Payment, intent_ids: Iterable[str]) -> _StripeView:
    """The payment's view read afresh from Stripe, object by object."""
    ids = set(intent_ids)
    if payment.stripe_payment_intent_id:
        ids.add(payment.stripe_payment_intent_id)
    intents = {}
    for intent_id in sorted(ids):
        intent = _retrieve_intent(intent_id)
        if intent is not None:
            intents[intent.id] = intent
    charges = {}
    for intent in intents.values():
        if intent.latest_charge_id and intent.latest_charge_id not in charges:
            charges[intent.latest_charge_id] = gateway.charge_retrieve(intent.latest_charge_id)
    own = payment.stripe_payment_intent_id
    refund_list = gateway.refunds_for_payment_intent(own) if own and own in intents else []
    return _StripeView(intents, charges, refund_list)


def _rows_of(payment_id: int, view: _StripeView) -> _Rows:
    """The payment's rows read afresh."""
    payment = Payment.objects.get(pk=payment_id)
    recorded_on = dict(RefundRequest.objects.filter(stripe_refund_id__in=[r.id for r in view.refunds])
                       .values_list("stripe_refund_id", "payment_id"))
    return _Rows(payment=payment, booking=Booking.objects.filter(payment_id=payment_id).first(),
                 requests=list(RefundRequest.objects.filter(payment_id=payment_id)), recorded_on=recorded_on)


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def _payment_ids_to_check(lists: _Lists, since: datetime | None) -> list[int]:
    """Every payment that records a PaymentIntent (created since ``since``), every payment an intent
    names, and every payment a listed refund is on."""
    with_intent = Payment.objects.filter(stripe_payment_intent_id__isnull=False)
    if since is not None:
        with_intent = with_intent.filter(created_at__gte=since)
    ids = set(with_intent.values_list("pk", flat=True)) | set(lists.intents_by_payment)
    refunded_intents = sorted(set(lists.refunds_by_intent) - set(lists.intent_by_id))
    for start in range(0, len(refunded_intents), CHUNK):
        ids |= set(Payment.objects.filter(stripe_payment_intent_id__in=refunded_intents[start:start + CHUNK])
                   .values_list("pk", flat=True))
    return sorted(ids)


# --- repairs ---------------------------------------------------------------------------------------------
class _Undo(Exception):
    """Raised inside a repair's savepoint to roll it back: the re-check found something new."""

    def __init__(self, new: list[_Found]):
        self.new = new
        super().__init__(", ".join(f.kind for f in new))


def _run_repairs(steps: set[str], payment: Payment, view: _StripeView) -> None:
    for step in REPAIR_ORDER:
        if step not in steps:
            continue
        if step == SETTLE:
            succeeded = [i for i in view.intents.values() if i.status == "succeeded"]
            intent_id = payment.stripe_payment_intent_id or succeeded[0].id
            lifecycle.payment_settle_from_intent(payment_id=payment.pk,
                                                 intent=gateway.payment_intent_retrieve(intent_id))
        elif step == BOOK:
            lifecycle.payment_booking_restore(payment_id=payment.pk)
        elif step == SYNC:
            refunds.payment_sync_refunds(payment_id=payment.pk)
        elif step == CLOSE_BOOKING:
            lifecycle.payment_booking_close_refunded(payment_id=payment.pk)
        elif step == DISPUTE:
            disputes.disputes_sync_for_payment(payment_id=payment.pk)


def _repair(rows: _Rows, view: _StripeView, found: list[_Found]) -> list[Difference]:
    """Run the repairs one payment's differences call for, re-check it, keep them only if nothing new
    appeared, and answer each difference as repaired or not."""
    steps = {step for f in found for step in f.repairs}
    if not steps:
        return [f.difference() for f in found]
    payment_id = rows.payment.pk
    before = {f.key for f in found}
    try:
        with transaction.atomic():
            _run_repairs(steps, rows.payment, view)
            payment = Payment.objects.get(pk=payment_id)
            after_view = _fetch_view(payment, view.intents)
            after = _differences(_rows_of(payment_id, after_view), after_view)
            new = [f for f in after if f.key not in before]
            if new:
                raise _Undo(new)
    except _Undo as undo:
        logger.warning("consistency: repair of payment %s undone: it would have left %s", payment_id, undo)
        kinds = ", ".join(sorted({f.kind for f in undo.new}))
        note = f" (a repair was tried and undone: it would have left {kinds})"
        return [f.difference(note=note if f.repairs else "") for f in found]
    except DomainError as exc:  # a gateway error, or a workflow refusing the state it found
        logger.warning("consistency: repair of payment %s failed: %s", payment_id, exc.code)
        note = f" (the repair failed: {exc.code}: {exc.message})"
        return [f.difference(note=note if f.repairs else "") for f in found]
    left = {f.key: f for f in after}
    answered = []
    for f in found:
        still = left.get(f.key)
        if still is None:
            answered.append(f.difference(repaired=True))
        else:
            answered.append(still.difference(note=" (the repair ran but did not remove it)" if still.repairs else ""))
    return answered


# --- the check ---------------------------------------------------------------------------------------------
def check_stripe_consistency(*, repair: bool = True, since: datetime | None = None,
                             grace: timedelta = SETTLE_GRACE) -> ConsistencyReport:
    """Compare Stripe's PaymentIntents, charges and refunds (created since ``since``, or all) with the
    database; with ``repair``, repair what can be and re-check it.

    Raises ``gateway.GatewayError`` when Stripe cannot be read; repairs already made stay (each is
    committed on its own) and a later run finds nothing left of them."""
    cutoff = timezone.now() - grace
    lists = _Lists.read(since)
    report = ConsistencyReport(checked={"payment_intents": len(lists.intents), "charges": len(lists.charges),
                                        "refunds": len(lists.refunds), "payments": 0})
    for chunk in _chunks(_payment_ids_to_check(lists, since)):
        payments = Payment.objects.in_bulk(chunk)
        bookings = {b.payment_id: b for b in Booking.objects.filter(payment_id__in=chunk)}
        requests: dict[int, list[RefundRequest]] = defaultdict(list)
        for request in RefundRequest.objects.filter(payment_id__in=chunk):
            requests[request.payment_id].append(request)
        views = {pk: lists.view(payment) for pk, payment in payments.items()}
        refund_ids = [r.id for view in views.values() if view is not None for r in view.refunds]
        recorded_on = dict(RefundRequest.objects.filter(stripe_refund_id__in=refund_ids)
                           .values_list("stripe_refund_id", "payment_id"))
        for payment_id in chunk:
            payment = payments.get(payment_id)
            if payment is None:
                report.differences += [
                    Difference("intent_unknown_payment", f"intent {intent.id}",
                               f"its metadata names payment {payment_id}, which the database does not have "
                               f"({intent.status}, {intent.amount} {intent.currency})")
                    for intent in sorted(lists.intents_by_payment.get(payment_id, []), key=lambda i: i.id)]
                continue
            view, fresh = views[payment_id], False
            if view is None:
                view, fresh = _fetch_view(payment, lists.intent_ids_for(payment)), True
                rows = _rows_of(payment_id, view)
            else:
                rows = _Rows(payment=payment, booking=bookings.get(payment_id), requests=requests[payment_id],
                             recorded_on=recorded_on)
            if payment.updated_at > cutoff or view.settling(cutoff):
                continue
            report.checked["payments"] += 1
            found = _differences(rows, view)
            if found and not fresh:  # confirmed on a fresh read: the lists may predate a change
                view = _fetch_view(payment, view.intents)
                rows = _rows_of(payment_id, view)
                found = _differences(rows, view)
            if not found:
                continue
            report.differences += _repair(rows, view, found) if repair else [f.difference() for f in found]
    return report
