"""Django admin for staff. Money fields are read-only: money moves only through the services."""

from __future__ import annotations

from django.contrib import admin, messages

from linguaflex.errors import DomainError

from .models import Payment, RefundRequest, SavedPaymentMethod, StripeCustomer, WebhookEvent, WebhookEventStatus
from .services import refunds
from .services.webhooks import webhook_events_replay


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _report(modeladmin, request, done: int, errors: list[str], verb: str) -> None:
    if done:
        modeladmin.message_user(request, f"{done} {verb}.", messages.SUCCESS)
    for error in errors:
        modeladmin.message_user(request, error, messages.ERROR)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["id", "student", "teacher", "gig", "amount_cents", "admin_fee_cents", "teacher_amount_cents",
                    "refunded_cents", "status", "card_brand", "card_last4", "created_at"]
    list_filter = ["status", "card_brand", "created_at"]
    search_fields = ["student__email", "teacher__email", "stripe_payment_intent_id", "stripe_charge_id", "gig__title"]
    list_select_related = ["student", "teacher", "gig"]
    date_hierarchy = "created_at"
    actions = ["refund_in_full"]

    @admin.action(description="Refund what is left of the selected payments (admin refund)")
    def refund_in_full(self, request, queryset):
        done, errors = 0, []
        for payment in queryset:
            try:
                refund = refunds.admin_refund_create(admin=request.user, payment=payment, amount_cents=None,
                                                     reason="Refunded from Django admin")
                done += refund.status == "succeeded"
                if refund.status == "failed":
                    errors.append(f"payment {payment.pk}: refund failed: {refund.failure_reason}")
            except DomainError as exc:
                errors.append(f"payment {payment.pk}: {exc.message}")
        _report(self, request, done, errors, "payment(s) refunded")

    def has_change_permission(self, request, obj=None):
        return obj is None and request.user.is_staff  # the changelist (and its actions); no edit form


@admin.register(RefundRequest)
class RefundRequestAdmin(admin.ModelAdmin):
    list_display = ["id", "payment", "amount_cents", "status", "kind", "requested_by", "decided_by", "decided_at",
                    "created_at"]
    list_filter = ["status", "kind", "created_at"]
    search_fields = ["payment__student__email", "payment__teacher__email", "stripe_refund_id",
                     "payment__stripe_payment_intent_id"]
    list_select_related = ["payment", "requested_by", "decided_by"]
    readonly_fields = ["payment", "amount_cents", "status", "kind", "reason", "failure_reason", "requested_by",
                       "decided_by", "decided_at", "stripe_refund_id", "applied", "created_at", "updated_at"]
    fields = readonly_fields[:5] + ["decision_note"] + readonly_fields[5:]
    actions = ["approve", "reject"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Approve: issue the Stripe refund")
    def approve(self, request, queryset):
        done, errors = 0, []
        for refund in queryset:
            try:
                result = refunds.refund_request_approve(admin=request.user, refund_request_id=refund.pk)
                done += 1
                if result.status == "failed":
                    errors.append(f"refund {refund.pk}: Stripe reported failure: {result.failure_reason}")
            except DomainError as exc:
                errors.append(f"refund {refund.pk}: {exc.message}")
        _report(self, request, done, errors, "refund request(s) approved")

    @admin.action(description="Reject")
    def reject(self, request, queryset):
        done, errors = 0, []
        for refund in queryset:
            try:
                refunds.refund_request_reject(admin=request.user, refund_request_id=refund.pk,
                                              note=refund.decision_note or "Rejected in Django admin")
                done += 1
            except DomainError as exc:
                errors.append(f"refund {refund.pk}: {exc.message}")
        _report(self, request, done, errors, "refund request(s) rejected")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["stripe_event_id", "type", "status", "attempts", "object_id", "received_at", "processed_at"]
    list_filter = ["status", "type"]
    search_fields = ["stripe_event_id", "object_id", "payment_intent_id"]
    actions = ["replay"]

    def has_change_permission(self, request, obj=None):
        return obj is None and request.user.is_staff

    @admin.action(description="Replay the selected events")
    def replay(self, request, queryset):
        outcomes = webhook_events_replay(event_ids=list(queryset.values_list("pk", flat=True)))
        errors = [f"{e.stripe_event_id}: {o}" for e, o in outcomes if o.startswith("failed")]
        done = sum(1 for e, _ in outcomes if e.status == WebhookEventStatus.PROCESSED)
        _report(self, request, done, errors, "event(s) processed")


@admin.register(SavedPaymentMethod)
class SavedPaymentMethodAdmin(ReadOnlyAdmin):
    list_display = ["stripe_payment_method_id", "user", "brand", "last4", "exp_month", "exp_year", "is_default",
                    "created_at"]
    list_filter = ["brand", "is_default"]
    search_fields = ["user__email", "stripe_payment_method_id", "fingerprint"]
    list_select_related = ["user"]


@admin.register(StripeCustomer)
class StripeCustomerAdmin(ReadOnlyAdmin):
    list_display = ["stripe_customer_id", "user", "created_at"]
    search_fields = ["user__email", "stripe_customer_id"]
    list_select_related = ["user"]
