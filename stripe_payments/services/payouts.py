"""Paying teachers what the platform owes them, and taking back what refunds reversed.

- A payment for a teacher whose connected account can receive transfers is a destination charge:
  Stripe moves the share in the payment's own call (``record_destination_share``, at settle).
- Otherwise the share is owed (ledger ``teacher_owed``). ``pay_out_teachers`` pays it once the
  account can receive transfers: one transfer per payment, linked to its charge by
  ``source_transaction``, under a Stripe idempotency key derived from the committed
  ``TeacherTransfer`` row. A rerun (after a crash, or run twice at once) finds that row and calls
  Stripe again with the same key, so Stripe transfers once; a row whose key may have expired
  (over 23 hours) is first looked for at Stripe by its transfer group.
- A refund or dispute of a paid-out share is taken back by a transfer reversal
  (``reverse_paid_shares``), each under a key naming the cumulative total it brings the reversal
  to, so a rerun reverses once; a destination charge's refund reverses the share in Stripe's own
  refund call. A won dispute's share goes back by a new transfer (``restore_won_disputes``).
- Stripe saves a refused request's answer under its idempotency key: a refused transfer,
  reversal or restore is retried under a new key (a refusal counter on the row); a request whose
  outcome is unknown (timeout, dropped connection) is retried under the same key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Subquery, Sum
from django.utils import timezone

from .. import gateway, keys
from ..models import (
    CHARGED_STATUSES,
    DISPUTE_OPEN,
    ConnectedAccount,
    Dispute,
    DisputeStatus,
    LedgerAccount,
    LedgerEntry,
    LedgerKind,
    Payment,
    TeacherTransfer,
    TeacherTransferKind,
    TeacherTransferStatus,
)
from . import ledger
from .common import with_request_id

logger = logging.getLogger(__name__)

# Stripe keeps idempotency keys 24 hours: a pending row older than this is looked for first.
KEY_SAFE_AGE = timedelta(hours=23)


def destination_subquery(teacher_id) -> Subquery:
    """The connected account a new payment to the teacher ``teacher_id`` (an OuterRef) goes to, as a
    subquery read with the gig; NULL for none (a platform charge)."""
    return Subquery(ConnectedAccount.objects.filter(teacher_id=teacher_id, transfers_active=True)
                    .values("stripe_account_id")[:1])


def record_destination_share(*, payment: Payment, fresh: bool = False) -> None:
    """A destination charge succeeded (the payment locked by the caller): its share is on the
    teacher's account already; record the transfer and its ledger movement, once. ``fresh``: the
    payment became succeeded in the caller's transaction, so neither exists yet (written without
    looking; a conflict raises and the caller rolls back)."""
    if not payment.destination_account_id or payment.teacher_amount_cents <= 0:
        return

    def create() -> TeacherTransfer:
        return TeacherTransfer.objects.create(
            payment=payment, teacher_id=payment.teacher_id, stripe_account_id=payment.destination_account_id,
            kind=TeacherTransferKind.DESTINATION, status=TeacherTransferStatus.PAID,
            amount_cents=payment.teacher_amount_cents)

    if fresh:
        ledger.post_transfer(transfer=create(), payment=payment, fresh=True)
        return
    transfer = TeacherTransfer.objects.filter(payment_id=payment.pk).first()
    if transfer is None:
        try:
            with transaction.atomic():
                transfer = create()
        except IntegrityError:
            transfer = TeacherTransfer.objects.get(payment_id=payment.pk)
    ledger.post_transfer(transfer=transfer, payment=payment)


def _transfer_key(transfer: TeacherTransfer, step: str = "create") -> str:
    if step == "create" and transfer.refusals:
        step = f"create-{transfer.refusals}"  # a new key after each refusal (Stripe replays those)
    return keys.row_key("transfer", transfer.pk, transfer.created_at, step)


def _group(payment_id: int) -> str:
    return f"payment-{payment_id}"


@dataclass
class PayoutRun:
    paid: list[int] = field(default_factory=list)  # teacher transfer ids paid in this run
    paid_cents: int = 0
    pending: list[int] = field(default_factory=list)  # Stripe's answer not known: the next run retries
    failed: list[int] = field(default_factory=list)
    reversed_cents: int = 0
    reversals: int = 0


def _payable_payment_ids() -> list[int]:
    """Platform charges of teachers whose account can receive transfers now, with a share still
    owed and no transfer row yet, one pending, or one Stripe refused (retried by ``_claim`` once
    the account changed since)."""
    teachers = ConnectedAccount.objects.filter(transfers_active=True).values_list("teacher_id", flat=True)
    owed = (LedgerEntry.objects.filter(account=LedgerAccount.TEACHER_OWED, teacher_id__in=teachers,
                                       payment__destination_account_id="")
            .values("payment_id").annotate(owed=Sum("amount_cents")).filter(owed__gt=0)
            .values_list("payment_id", flat=True))
    return list(Payment.objects.filter(pk__in=owed, status__in=CHARGED_STATUSES)
                .exclude(disputes__status__in=DISPUTE_OPEN)
                .exclude(teacher_transfer__status=TeacherTransferStatus.PAID)
                .order_by("pk").values_list("pk", flat=True))


def _claim(payment_id: int) -> TeacherTransfer | None:
    """The payment's transfer row: committed with the amount owed before Stripe is called (or the
    pending one an earlier run left)."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        existing = TeacherTransfer.objects.select_for_update().filter(payment_id=payment_id).first()
        if existing is not None and existing.status == TeacherTransferStatus.PENDING:
            return existing
        account = ConnectedAccount.objects.filter(teacher_id=payment.teacher_id, transfers_active=True).first()
        owed = ledger.owed_for_payment(payment_id)
        if account is None or owed <= 0 or not payment.stripe_charge_id:
            return None
        if existing is not None:  # refused before: again only if the account changed since
            if existing.status != TeacherTransferStatus.FAILED or account.updated_at <= existing.updated_at:
                return None
            existing.status = TeacherTransferStatus.PENDING
            existing.amount_cents = owed
            existing.stripe_account_id = account.stripe_account_id
            existing.failure_message = ""
            existing.save(update_fields=["status", "amount_cents", "stripe_account_id", "failure_message",
                                         "updated_at"])
            return existing
        return TeacherTransfer.objects.create(
            payment=payment, teacher_id=payment.teacher_id, stripe_account_id=account.stripe_account_id,
            kind=TeacherTransferKind.PAYOUT, amount_cents=owed)


def _send(transfer: TeacherTransfer) -> gateway.TransferResult:
    payment = transfer.payment
    if timezone.now() - transfer.created_at > KEY_SAFE_AGE:
        for found in gateway.transfers_for_group(_group(payment.pk)):
            if found.metadata.get("teacher_transfer_id") == str(transfer.pk):
                return found
    return gateway.transfer_create(
        amount_cents=transfer.amount_cents, destination_account_id=transfer.stripe_account_id,
        source_charge_id=payment.stripe_charge_id, transfer_group=_group(payment.pk),
        metadata=with_request_id({"payment_id": str(payment.pk), "teacher_transfer_id": str(transfer.pk),
                                  "teacher_id": str(transfer.teacher_id)}, transfer.request_id),
        idempotency_key=_transfer_key(transfer))


def _paid(transfer_id: int, result: gateway.TransferResult) -> TeacherTransfer:
    with transaction.atomic():
        payment_id = TeacherTransfer.objects.values_list("payment_id", flat=True).get(pk=transfer_id)
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        transfer = TeacherTransfer.objects.select_for_update().get(pk=transfer_id)
        if transfer.status != TeacherTransferStatus.PAID:
            transfer.status = TeacherTransferStatus.PAID
            transfer.stripe_transfer_id = result.id
            transfer.save(update_fields=["status", "stripe_transfer_id", "updated_at"])
        ledger.post_transfer(transfer=transfer, payment=payment)
    return transfer


def _failed(transfer_id: int, message: str) -> None:
    with transaction.atomic():
        transfer = TeacherTransfer.objects.select_for_update().get(pk=transfer_id)
        if transfer.status == TeacherTransferStatus.PENDING:
            transfer.status = TeacherTransferStatus.FAILED
            transfer.failure_message = message[:500]
            transfer.refusals += 1
            transfer.save(update_fields=["status", "failure_message", "refusals", "updated_at"])


def pay_out_teachers() -> PayoutRun:
    """Pay every owed share that can be paid now, reverse at Stripe what refunds and disputes took
    back from paid-out shares, and give back the shares of won disputes."""
    run = PayoutRun()
    for payment_id in _payable_payment_ids():
        transfer = _claim(payment_id)
        if transfer is None:
            continue
        try:
            result = _send(transfer)
        except gateway.ProviderInvalidRequest as exc:
            logger.error("transfer %s of payment %s refused by Stripe: %s", transfer.pk, payment_id, exc.message)
            _failed(transfer.pk, exc.message)
            run.failed.append(transfer.pk)
            continue
        except gateway.GatewayError as exc:  # unreachable, timed out: the row stays pending
            logger.warning("transfer %s of payment %s: %s; retried by the next run", transfer.pk, payment_id,
                           type(exc).__name__)
            run.pending.append(transfer.pk)
            continue
        _paid(transfer.pk, result)
        run.paid.append(transfer.pk)
        run.paid_cents += transfer.amount_cents
    reverse_paid_shares(run)
    restore_won_disputes(run)
    return run


def _reversal_target(transfer: TeacherTransfer) -> int:
    """What of the transfer we must have reversed at Stripe: what refunds and disputes took back
    from the paid-out share, less what Stripe's own refund calls reversed (a destination charge's
    refunds, with ``reverse_transfer``)."""
    return ledger.to_reverse_for_payment(transfer.payment_id)


def _stripe_transfer_id(transfer: TeacherTransfer) -> str | None:
    """A destination charge's transfer is Stripe's, made with the charge: read its id once."""
    if transfer.stripe_transfer_id:
        return transfer.stripe_transfer_id
    charge_id = transfer.payment.stripe_charge_id
    found = gateway.charge_retrieve(charge_id).transfer_id if charge_id else None
    if found:
        TeacherTransfer.objects.filter(pk=transfer.pk, stripe_transfer_id__isnull=True).update(stripe_transfer_id=found)
    return found


def reverse_paid_shares(run: PayoutRun | None = None) -> PayoutRun:
    """Reverse at Stripe what the ledger took back from shares already on teachers' accounts."""
    run = run or PayoutRun()
    taken = (LedgerEntry.objects.filter(account=LedgerAccount.TEACHER_PAID,
                                        kind__in=[LedgerKind.REVERSAL, LedgerKind.DISPUTE])
             .values_list("payment_id", flat=True).distinct())
    for transfer in (TeacherTransfer.objects.filter(status=TeacherTransferStatus.PAID, payment_id__in=taken)
                     .select_related("payment").order_by("pk")):
        target = min(_reversal_target(transfer), transfer.amount_cents)
        if target <= transfer.reversed_cents:
            continue
        amount = target - transfer.reversed_cents
        try:
            transfer_id = _stripe_transfer_id(transfer)
            if transfer_id is None:
                logger.error("teacher transfer %s (payment %s) has no transfer at Stripe to reverse",
                             transfer.pk, transfer.payment_id)
                continue
            step = f"reverse-to-{target}" + (f"-r{transfer.refusals}" if transfer.refusals else "")
            gateway.transfer_reverse(
                transfer_id=transfer_id, amount_cents=amount, idempotency_key=_transfer_key(transfer, step),
                metadata=with_request_id({"payment_id": str(transfer.payment_id),
                                          "teacher_transfer_id": str(transfer.pk)}, transfer.request_id))
        except gateway.ProviderInvalidRequest as exc:
            # Refused, nothing done: Stripe replays that answer under the key, so the next run
            # tries under a new one.
            logger.error("reversal of transfer %s to %s refused: %s", transfer.pk, target, exc.message)
            TeacherTransfer.objects.filter(pk=transfer.pk).update(refusals=F("refusals") + 1)
            run.failed.append(transfer.pk)
            continue
        except gateway.GatewayError as exc:
            logger.warning("reversal of transfer %s to %s: %s; retried by the next run", transfer.pk, target,
                           type(exc).__name__)
            run.pending.append(transfer.pk)
            continue
        with transaction.atomic():
            locked = TeacherTransfer.objects.select_for_update().get(pk=transfer.pk)
            if locked.reversed_cents < target:
                locked.reversed_cents = target
                locked.save(update_fields=["reversed_cents", "updated_at"])
        run.reversals += 1
        run.reversed_cents += amount
    return run


def restore_won_disputes(run: PayoutRun | None = None) -> PayoutRun:
    """A won dispute of a share that had been paid out (and reversed): the share goes back to the
    teacher by a new transfer from the platform's available balance, keyed from the dispute row;
    until it is made the share is owed (ledger ``dispute-won``), then paid (``restore:<id>``)."""
    run = run or PayoutRun()
    for dispute in (Dispute.objects.filter(status=DisputeStatus.WON, share_was_paid_out=True, restore_transfer_id="",
                                           share_cents__gt=0).select_related("payment").order_by("pk")):
        share = TeacherTransfer.objects.filter(payment_id=dispute.payment_id).first()
        if share is None:
            continue
        try:
            result = gateway.transfer_create(
                amount_cents=dispute.share_cents, destination_account_id=share.stripe_account_id,
                source_charge_id=None, transfer_group=_group(dispute.payment_id),
                metadata={"payment_id": str(dispute.payment_id), "dispute_id": dispute.stripe_dispute_id},
                idempotency_key=keys.row_key("dispute", dispute.pk, dispute.created_at,
                                             f"restore-{dispute.restore_refusals}"))
        except gateway.ProviderInvalidRequest as exc:
            # Refused, nothing done (e.g. the available balance is short): Stripe saved that answer
            # under the key, so the next run tries under a new one.
            logger.warning("restoring dispute %s's share refused: %s; retried by the next run", dispute.pk,
                           exc.message)
            Dispute.objects.filter(pk=dispute.pk, restore_transfer_id="").update(
                restore_refusals=F("restore_refusals") + 1)
            run.pending.append(share.pk)
            continue
        except gateway.GatewayError as exc:  # unreachable, timed out: the same key next time
            logger.warning("restoring dispute %s's share: %s; retried by the next run", dispute.pk,
                           type(exc).__name__)
            run.pending.append(share.pk)
            continue
        with transaction.atomic():
            payment = Payment.objects.select_for_update().get(pk=dispute.payment_id)
            locked = Dispute.objects.select_for_update().get(pk=dispute.pk)
            if not locked.restore_transfer_id:
                locked.restore_transfer_id = result.id
                locked.save(update_fields=["restore_transfer_id", "updated_at"])
            ledger.post_movement(f"restore:{dispute.pk}", payment, [
                (LedgerAccount.TEACHER_OWED, LedgerKind.TRANSFER, -dispute.share_cents),
                (LedgerAccount.TEACHER_PAID, LedgerKind.TRANSFER, dispute.share_cents),
            ], result.id)
        run.paid_cents += dispute.share_cents
    return run
