"""Payments and everything that moves money. Amounts are integer cents; currency is always usd.

Only what the project uses of Stripe's objects is kept: ids, card brand, last4, expiry and
fingerprint. A card number or CVC never reaches a model.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from linguaflex.request_id import current_or_blank

# The id of the request (or task) that created the row (linguaflex/request_id.py), shown in the
# admin and sent in the metadata of the Stripe object the row stands for: frozen with the row, as
# a retry under the same Stripe idempotency key must send the same parameters.
# db_default: instances still running the code before the migration insert rows without the
# column during a rolling deploy. No index: building one would block the table's writes, and
# finding a row by request id is a support look-up (the admin's search), not a hot path.
REQUEST_ID_FIELD = dict(max_length=128, blank=True, default=current_or_blank, db_default="", editable=False)


class PaymentStatus(models.TextChoices):
    PROCESSING = "processing", "Processing"  # row committed, Stripe called or its answer unknown
    REQUIRES_ACTION = "requires_action", "Requires action"  # waiting for 3-D Secure
    SUCCEEDED = "succeeded", "Succeeded"  # charged; the booking exists
    FAILED = "failed", "Failed"  # declined or errored; never a booking
    CANCELED = "canceled", "Canceled"  # the PaymentIntent was canceled
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"  # some money returned
    REFUNDED = "refunded", "Refunded"  # all money returned
    DISPUTED = "disputed", "Disputed"  # the card holder disputed the charge


# Statuses in which money was captured (and so can be refunded).
CAPTURED_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)
UNSETTLED_STATUSES = (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION)
# Statuses in which the card was charged (captured, perhaps refunded or disputed since): the only
# payments whose money moved. A payment in any other status keeps its intended split (what the
# charge would have been, fee + share = amount), but reports, earnings and the ledger leave it out.
CHARGED_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED,
                    PaymentStatus.DISPUTED)

# Every move a payment may make; ``services.lifecycle`` is the only writer of Payment.status and
# refuses any other (409 invalid_state).
_S = PaymentStatus
PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    # Stripe's answer arrives (API, return page, webhook, reconciliation), or the intent is abandoned.
    _S.PROCESSING: frozenset({_S.REQUIRES_ACTION, _S.SUCCEEDED, _S.FAILED, _S.CANCELED}),
    _S.REQUIRES_ACTION: frozenset({_S.PROCESSING, _S.SUCCEEDED, _S.FAILED, _S.CANCELED}),
    # Failed, yet Stripe charged after all (a late 3-D Secure success); or never sent and retried.
    _S.FAILED: frozenset({_S.SUCCEEDED, _S.PROCESSING}),
    _S.CANCELED: frozenset(),
    _S.SUCCEEDED: frozenset({_S.PARTIALLY_REFUNDED, _S.REFUNDED, _S.DISPUTED}),
    # Refunds add up; Stripe may also report a counted refund failed, which gives money back.
    _S.PARTIALLY_REFUNDED: frozenset({_S.SUCCEEDED, _S.REFUNDED, _S.DISPUTED}),
    _S.REFUNDED: frozenset({_S.SUCCEEDED, _S.PARTIALLY_REFUNDED, _S.DISPUTED}),
    # A disputed payment stays disputed: refunds still count, the status is for admins.
    _S.DISPUTED: frozenset(),
}


class StripeCustomer(models.Model):
    """The Stripe customer of one user, created on the first card."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stripe_customer")
    stripe_customer_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stripe_customer_id} ({self.user_id})"


class SavedPaymentMethod(models.Model):
    """A card saved at Stripe for a student: only brand, last4, expiry and fingerprint."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_payment_methods")
    stripe_payment_method_id = models.CharField(max_length=255, unique=True)
    brand = models.CharField(max_length=32)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    fingerprint = models.CharField(max_length=64, blank=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "fingerprint"], condition=~Q(fingerprint=""), name="stripe_pm_user_fingerprint_unique"
            ),
            models.UniqueConstraint(fields=["user"], condition=Q(is_default=True), name="stripe_pm_one_default"),
        ]

    def __str__(self) -> str:
        return f"{self.brand} ****{self.last4}"


class PaymentMethodOwner(models.Model):
    """Whom each Stripe PaymentMethod was made for, saved or not: a card id is usable only by that
    student (another's is a 404, with no Stripe call). Recorded when the card is set up or first
    charged, and when a client-created PaymentMethod is first used."""

    stripe_payment_method_id = models.CharField(max_length=255, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.stripe_payment_method_id} ({self.user_id})"


class PaymentQuerySet(models.QuerySet):
    def charged(self) -> PaymentQuerySet:
        """Payments whose money moved: what every money figure (earnings, ledger, revenue) sums."""
        return self.filter(status__in=CHARGED_STATUSES)


class Payment(models.Model):
    """One attempt to pay for one gig. Committed (``processing``) before Stripe is called."""

    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments")
    teacher = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="earnings")
    gig = models.ForeignKey("gigs.Gig", on_delete=models.PROTECT, related_name="payments")
    amount_cents = models.BigIntegerField()
    admin_fee_cents = models.BigIntegerField()
    teacher_amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    status = models.CharField(max_length=32, choices=PaymentStatus.choices, default=PaymentStatus.PROCESSING)
    refunded_cents = models.BigIntegerField(default=0)
    refunded_admin_fee_cents = models.BigIntegerField(default=0)
    refunded_teacher_cents = models.BigIntegerField(default=0)

    objects = PaymentQuerySet.as_manager()

    stripe_payment_intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    # The customer the PaymentIntent is created for, frozen with the row: a retry under the same
    # Stripe idempotency key must send the same parameters.
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    stripe_charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    stripe_payment_method_id = models.CharField(max_length=255, blank=True)
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    save_card = models.BooleanField(default=False)  # the student asked to keep the card
    payment_method_saved = models.BooleanField(default=False)
    failure_code = models.CharField(max_length=64, blank=True)
    decline_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)  # for the student (decline_messages.py)
    # Stripe's own text about the failure (ids masked): for admins, never in an API response.
    provider_failure_message = models.CharField(max_length=500, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)  # carried to the booking
    # The client's Idempotency-Key of the request that made it: a retry of that request (after a
    # 5xx, or a worker that died) finds and resumes this payment, under the same Stripe key.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    # The teacher's connected account when the payment was made and it could receive transfers:
    # the charge is then a destination charge to it (frozen with the row, as a retry under the same
    # Stripe key must send the same parameters). Empty: a platform charge, the share owed.
    destination_account_id = models.CharField(max_length=255, blank=True)
    request_id = models.CharField(**REQUEST_ID_FIELD)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Each list's filter, then its order (newest first: the index read backwards): admins' all,
        # a student's or a teacher's own, by status. (status, updated_at) is reconciliation's.
        indexes = [
            models.Index(fields=["status", "updated_at"]),
            models.Index(fields=["created_at", "id"]),
            models.Index(fields=["student", "created_at", "id"]),
            models.Index(fields=["teacher", "created_at", "id"]),
            models.Index(fields=["status", "created_at", "id"]),
            # A student's or teacher's own list with ?status=: without these, the role's index is
            # read through all the user's rows to keep one status (bench_lists: 1.65x at 100,000).
            models.Index(fields=["student", "status", "created_at", "id"]),
            models.Index(fields=["teacher", "status", "created_at", "id"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(admin_fee_cents__gte=0, teacher_amount_cents__gte=0)
                & Q(admin_fee_cents=F("amount_cents") - F("teacher_amount_cents")),
                name="payment_split_sums_to_amount",
            ),
            models.CheckConstraint(condition=Q(amount_cents__gte=50), name="payment_amount_min"),
            models.CheckConstraint(
                condition=Q(refunded_cents__gte=0, refunded_cents__lte=F("amount_cents")),
                name="payment_refunded_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(refunded_admin_fee_cents__gte=0, refunded_teacher_cents__gte=0)
                & Q(refunded_admin_fee_cents=F("refunded_cents") - F("refunded_teacher_cents")),
                name="payment_refund_split_sums",
            ),
            models.CheckConstraint(condition=Q(currency="usd"), name="payment_currency_usd"),
            models.UniqueConstraint(fields=["student", "idempotency_key"], condition=Q(idempotency_key__isnull=False),
                                    name="payment_idempotency_key_unique_per_student"),
        ]

    def __str__(self) -> str:
        return f"Payment #{self.pk} {self.amount_cents}c {self.status}"

    @property
    def refundable_cents(self) -> int:
        return self.amount_cents - self.refunded_cents

    @property
    def charged(self) -> bool:
        """The card was charged: the split moved money (see CHARGED_STATUSES)."""
        return self.status in CHARGED_STATUSES

    @property
    def has_succeeded(self) -> bool:
        """Charged and not (yet) refunded or disputed: the state a booking is created for."""
        return self.status == PaymentStatus.SUCCEEDED


class IdempotencyRecord(models.Model):
    """A client's ``Idempotency-Key``: a keyed hash of the request, and the first answer.

    The body itself (which may hold card data) is never stored; the answer holds no card data.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=64)
    request_hash = models.CharField(max_length=64)
    # True while a request holds the key; False once answered, or after a 5xx (retryable).
    in_flight = models.BooleanField(default=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)  # null until answered (< 500)
    response_body = models.JSONField(null=True, blank=True)
    # The request that first used the key: a twin that resumes its work sends Stripe what it sent.
    request_id = models.CharField(max_length=128, blank=True, default=current_or_blank, db_default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")]


class RefundRequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # asked by the student, waiting for an admin
    SUCCEEDED = "succeeded", "Succeeded"  # Stripe refunded the money
    FAILED = "failed", "Failed"  # Stripe reported the refund failed (failure_reason)
    REJECTED = "rejected", "Rejected"  # an admin said no


class RefundKind(models.TextChoices):
    REQUESTED = "requested", "Requested by the student"
    ADMIN = "admin", "Issued by an admin"
    DECLINE = "decline", "Booking declined"
    CANCEL = "cancel", "Booking cancelled"
    EXPIRY = "expiry", "Booking expired"
    EXTERNAL = "external", "Issued outside LinguaFlex"


class RefundRequest(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refund_requests")
    amount_cents = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=RefundRequestStatus.choices, default=RefundRequestStatus.PENDING)
    kind = models.CharField(max_length=16, choices=RefundKind.choices, default=RefundKind.REQUESTED)
    reason = models.TextField(blank=True, max_length=2000)
    decision_note = models.TextField(blank=True, max_length=2000)
    failure_reason = models.CharField(max_length=255, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    stripe_refund_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    # Counted into the payment's refunded amounts (exactly once, whichever path settles it).
    applied = models.BooleanField(default=False)
    request_id = models.CharField(**REQUEST_ID_FIELD)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # The refunds list's order, all and by status (newest first: the index read backwards).
        indexes = [
            models.Index(fields=["created_at", "id"]),
            models.Index(fields=["status", "created_at", "id"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="refund_amount_positive"),
            models.UniqueConstraint(
                fields=["payment"], condition=Q(status="pending"), name="refund_one_pending_per_payment"
            ),
        ]

    def __str__(self) -> str:
        return f"Refund #{self.pk} {self.amount_cents}c {self.status}"


class WebhookEventStatus(models.TextChoices):
    RECEIVED = "received", "Received"  # stored, not yet handled
    PROCESSED = "processed", "Processed"  # its handler ran to the end
    FAILED = "failed", "Failed"  # its handler raised; see error, replayable
    IGNORED = "ignored", "Ignored"  # a type the project does not handle


class WebhookEvent(models.Model):
    stripe_event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    object_id = models.CharField(max_length=255, blank=True, db_index=True)
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    livemode = models.BooleanField(default=False)
    stripe_created = models.DateTimeField(null=True, blank=True)
    # The verified object's statuses, amounts and ids (gateway.EventInfo.object_state), never the
    # whole object: a handler whose rows already say the same makes no Stripe call. Empty: re-read.
    object_state = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=WebhookEventStatus.choices, default=WebhookEventStatus.RECEIVED)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # The delivery that stored it; the task that applies it runs under the same id.
    request_id = models.CharField(**REQUEST_ID_FIELD)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["status", "type"])]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_event_id} ({self.status})"


# --- Stripe Connect: teachers' accounts, what they are paid, and the ledger ---------------------------
class ConnectedAccount(models.Model):
    """A teacher's Stripe connected account (controller properties: Express dashboard, the platform
    pays the fees and carries the losses), kept in step with Stripe by ``account.updated``."""

    teacher = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="connected_account")
    stripe_account_id = models.CharField(max_length=255, unique=True)
    charges_enabled = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    details_submitted = models.BooleanField(default=False)
    # The `transfers` capability is active: only then is a payment a destination charge to it.
    transfers_active = models.BooleanField(default=False)
    requirements_due = models.JSONField(default=list, blank=True)
    # Stripe's `created` (Unix seconds) of the newest account state applied: an older event that
    # arrives late never overwrites a newer state.
    synced_at = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.stripe_account_id} (teacher {self.teacher_id})"

    @property
    def can_receive_transfers(self) -> bool:
        return self.transfers_active


class TeacherTransferKind(models.TextChoices):
    DESTINATION = "destination", "With the charge (destination charge)"  # Stripe moved it in the payment's call
    PAYOUT = "payout", "Paid later (pay_out_teachers)"  # a transfer linked to the charge by source_transaction


class TeacherTransferStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # row committed, Stripe called or its answer unknown
    PAID = "paid", "Paid"  # Stripe made the transfer
    FAILED = "failed", "Failed"  # Stripe refused it (the share stays owed)


class TeacherTransfer(models.Model):
    """The one transfer of a payment's teacher share to the teacher's connected account."""

    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="teacher_transfer")
    teacher = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    stripe_account_id = models.CharField(max_length=255)
    kind = models.CharField(max_length=16, choices=TeacherTransferKind.choices)
    status = models.CharField(max_length=16, choices=TeacherTransferStatus.choices,
                              default=TeacherTransferStatus.PENDING)
    amount_cents = models.BigIntegerField()
    # What of it was taken back at Stripe (refunds, lost disputes): a transfer reversal's total.
    reversed_cents = models.BigIntegerField(default=0)
    stripe_transfer_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    # How many times Stripe refused it (a 400: nothing done). Stripe replays a refused request's
    # answer under its key, so a retry (once the account changed) goes under a new one.
    refusals = models.PositiveIntegerField(default=0)
    request_id = models.CharField(**REQUEST_ID_FIELD)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="teacher_transfer_amount_positive"),
            models.CheckConstraint(condition=Q(reversed_cents__gte=0, reversed_cents__lte=F("amount_cents")),
                                   name="teacher_transfer_reversed_within_amount"),
        ]

    def __str__(self) -> str:
        return f"Transfer #{self.pk} {self.amount_cents}c {self.status}"


class LedgerAccount(models.TextChoices):
    """Where each cent of a payment is. Every movement's rows sum to zero."""

    STUDENT = "student", "Students"  # negative: paid in by students; refunds and chargebacks give back
    PLATFORM_FEES = "platform_fees", "Platform fees"  # the platform's 10%
    TEACHER_OWED = "teacher_owed", "Owed to teachers"  # a teacher's share still on the platform's balance
    TEACHER_PAID = "teacher_paid", "Paid to teachers"  # on the teacher's connected account
    DISPUTES = "disputes", "Disputed"  # taken back by card holders' disputes (until won)


class LedgerKind(models.TextChoices):
    CHARGE = "charge", "Charge"  # the student's payment (STUDENT)
    FEE = "fee", "Platform fee"  # the fee of a charge (PLATFORM_FEES)
    TEACHER_SHARE = "teacher_share", "Teacher share"  # the share of a charge (TEACHER_OWED)
    TRANSFER = "transfer", "Transfer"  # owed -> paid
    REFUND = "refund", "Refund"  # back to the student, fee and share in the cumulative split
    REVERSAL = "reversal", "Transfer reversal"  # a paid share taken back for a refund
    DISPUTE = "dispute", "Dispute"  # a chargeback takes the fee and the share
    DISPUTE_WON = "dispute_won", "Dispute won"  # a won dispute gives them back


class LedgerEntry(models.Model):
    """One row of the append-only, double-entry ledger, in integer cents. Rows of one movement
    share ``movement`` (derived from the row or Stripe object that caused it, so a movement is
    written once) and sum to zero; they are written in the transaction of the state change."""

    movement = models.CharField(max_length=100)
    account = models.CharField(max_length=16, choices=LedgerAccount.choices)
    kind = models.CharField(max_length=16, choices=LedgerKind.choices)
    amount_cents = models.BigIntegerField()
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="ledger_entries")
    teacher = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    stripe_object_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["movement", "account"], name="ledger_movement_account_unique"),
        ]
        indexes = [models.Index(fields=["teacher", "created_at"])]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.movement} {self.account} {self.amount_cents:+d}c"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("The ledger is append-only: write a new movement instead of changing a row.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("The ledger is append-only.")


class DisputeStatus(models.TextChoices):
    """Stripe's dispute statuses (https://docs.stripe.com/api/disputes/object#dispute_object-status)."""

    WARNING_NEEDS_RESPONSE = "warning_needs_response", "Inquiry: needs response"  # no funds withdrawn
    WARNING_UNDER_REVIEW = "warning_under_review", "Inquiry: under review"
    WARNING_CLOSED = "warning_closed", "Inquiry closed"
    NEEDS_RESPONSE = "needs_response", "Needs response"  # funds withdrawn; evidence due by evidence_due_by
    UNDER_REVIEW = "under_review", "Under review"  # evidence submitted
    WON = "won", "Won"  # funds reinstated
    LOST = "lost", "Lost"  # the card holder keeps the money
    PREVENTED = "prevented", "Prevented"


# Statuses in which the disputed amount has left the platform's balance (a won one came back).
DISPUTE_FUNDS_WITHDRAWN = (DisputeStatus.NEEDS_RESPONSE, DisputeStatus.UNDER_REVIEW, DisputeStatus.WON,
                           DisputeStatus.LOST)
DISPUTE_OPEN = (DisputeStatus.WARNING_NEEDS_RESPONSE, DisputeStatus.WARNING_UNDER_REVIEW,
                DisputeStatus.NEEDS_RESPONSE, DisputeStatus.UNDER_REVIEW)


class Dispute(models.Model):
    """A card holder's dispute of a payment's charge, kept in step with Stripe (the charge.dispute.*
    webhooks re-read it). The platform is liable on destination charges: when the funds are
    withdrawn, the disputed amount's fee and share parts leave the ledger (the teacher's share
    reversed from their account, or no longer owed); a won dispute gives them back."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="disputes")
    stripe_dispute_id = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=32, choices=DisputeStatus.choices)
    amount_cents = models.BigIntegerField()
    reason = models.CharField(max_length=64, blank=True)
    evidence_due_by = models.DateTimeField(null=True, blank=True)
    # The parts of the disputed amount (the cumulative split, after the refunds before it), fixed
    # when the funds were withdrawn; and whether the share was taken from the teacher's account.
    fee_cents = models.BigIntegerField(default=0)
    share_cents = models.BigIntegerField(default=0)
    share_was_paid_out = models.BooleanField(default=False)
    # A won dispute of a paid-out share: the share goes back to the teacher by a new transfer.
    restore_transfer_id = models.CharField(max_length=255, blank=True)
    # Restore attempts Stripe refused (a 400: nothing done, e.g. the available balance was short):
    # the next attempt needs a new idempotency key, as Stripe replays a refused request's answer.
    restore_refusals = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["evidence_due_by", "-id"]

    def __str__(self) -> str:
        return f"Dispute {self.stripe_dispute_id} {self.amount_cents}c {self.status}"

    @property
    def is_open(self) -> bool:
        return self.status in DISPUTE_OPEN
