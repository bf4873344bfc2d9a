"""Django admin for staff. Money fields are read-only: money moves only through the services.

Amounts are shown in dollars ("$1,234.56"; "$50.00 (5000 cents)" on a detail page) and sort by
their cents. The changelists put the status second, after the id, so that it is on screen at any
width; Stripe ids are on the detail pages and searchable, not columns.
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from linguaflex.errors import DomainError
from linguaflex.money import format_dollars, format_dollars_and_cents

from . import selectors_ledger
from .models import (
    DISPUTE_OPEN,
    ConnectedAccount,
    Dispute,
    LedgerEntry,
    Payment,
    RefundRequest,
    RefundRequestStatus,
    SavedPaymentMethod,
    StripeCustomer,
    TeacherTransfer,
    WebhookEvent,
    WebhookEventStatus,
)
from .services import refunds
from .services.webhooks import webhook_events_replay

REJECT_NOTE_MAX_LENGTH = 500


def dollars(field: str, description: str, *, detail: bool = False):
    """A ModelAdmin method showing the cents attribute ``field`` in dollars: a changelist column
    ("$50.00") that sorts by the cents, or with ``detail`` a read-only field ("$50.00 (5000 cents)")."""
    show_cents = format_dollars_and_cents if detail else format_dollars

    @admin.display(description=description, ordering=None if detail else field)
    def method(self, obj) -> str:
        return show_cents(getattr(obj, field))

    return method


def _flatten(fieldsets) -> list[str]:
    return [name for _, options in fieldsets for name in options["fields"]]


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
    list_display = ["id", "status", "amount", "refunded", "student", "teacher", "gig_title", "card", "created_at"]
    list_filter = ["status", "card_brand", "created_at"]
    search_fields = ["student__email", "teacher__email", "stripe_payment_intent_id", "stripe_charge_id", "gig__title",
                     "=request_id"]
    list_select_related = ["student", "teacher", "gig"]
    date_hierarchy = "created_at"
    actions = ["refund_in_full"]
    fieldsets = [
        (None, {"fields": ["status", "student", "teacher", "gig", "scheduled_at", "created_at", "updated_at"]}),
        ("Money", {"fields": ["amount_detail", "admin_fee_detail", "teacher_amount_detail", "refunded_detail",
                              "refunded_admin_fee_detail", "refunded_teacher_detail", "refundable_detail",
                              "currency"]}),
        ("Card", {"fields": ["card_brand", "card_last4", "stripe_payment_method_id", "save_card",
                             "payment_method_saved"]}),
        # request_id: the API call that made it, in the app's and the worker's logs and in the
        # PaymentIntent's metadata at Stripe.
        ("Stripe", {"fields": ["stripe_payment_intent_id", "stripe_charge_id", "stripe_customer_id",
                               "idempotency_key", "request_id"]}),
        ("Failure", {"fields": ["failure_code", "decline_code", "failure_message", "provider_failure_message"],
                     "description": "failure_message is what the student read; provider_failure_message is "
                                    "Stripe's own text, for staff only."}),
    ]
    readonly_fields = _flatten(fieldsets)
    # Shown in dollars by the *_detail fields above.
    CENTS_FIELDS = ("amount_cents", "admin_fee_cents", "teacher_amount_cents", "refunded_cents",
                    "refunded_admin_fee_cents", "refunded_teacher_cents")

    amount = dollars("amount_cents", "Amount")
    refunded = dollars("refunded_cents", "Refunded")
    amount_detail = dollars("amount_cents", "Amount", detail=True)
    admin_fee_detail = dollars("admin_fee_cents", "Platform fee", detail=True)
    teacher_amount_detail = dollars("teacher_amount_cents", "Teacher's share", detail=True)
    refunded_detail = dollars("refunded_cents", "Refunded", detail=True)
    refunded_admin_fee_detail = dollars("refunded_admin_fee_cents", "Refunded of the fee", detail=True)
    refunded_teacher_detail = dollars("refunded_teacher_cents", "Refunded of the teacher's share", detail=True)
    refundable_detail = dollars("refundable_cents", "Left to refund", detail=True)

    @admin.display(description="Gig", ordering="gig__title")
    def gig_title(self, payment: Payment) -> str:
        return Truncator(payment.gig.title).chars(40)

    @admin.display(description="Card", ordering="card_last4")
    def card(self, payment: Payment) -> str | None:
        return f"{payment.card_brand} •••• {payment.card_last4}".strip() if payment.card_last4 else None

    def get_fieldsets(self, request, obj=None):
        # A field added to the model later is shown too, under "Other", until it is given a place.
        listed = set(_flatten(self.fieldsets)) | set(self.CENTS_FIELDS)
        other = [f.name for f in Payment._meta.concrete_fields if not f.primary_key and f.name not in listed]
        return [*self.fieldsets, ("Other", {"fields": other})] if other else list(self.fieldsets)

    def get_readonly_fields(self, request, obj=None):
        return [*_flatten(self.get_fieldsets(request, obj)), *self.CENTS_FIELDS]

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


class RejectForm(forms.Form):
    note = forms.CharField(
        label="Note", max_length=REJECT_NOTE_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 5, "cols": 80}),
        help_text=f"Why the refund is rejected: e-mailed to the student and the teacher, and kept as the "
                  f"decision note. At most {REJECT_NOTE_MAX_LENGTH} characters.")


def _why_not_rejectable(refund: RefundRequest) -> str:
    """For the confirmation page only: what the reject service will refuse (it decides, under lock)."""
    if refund.status != RefundRequestStatus.PENDING:
        return f"it is already {refund.get_status_display().lower()}"
    if refund.stripe_refund_id:
        return "it was approved, and Stripe is processing the refund"
    if refund.kind in refunds.BOOKING_REFUND_KINDS:
        return "it is owed for a closed booking, so it can be approved, not rejected"
    return ""


@admin.register(RefundRequest)
class RefundRequestAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "amount", "kind", "payment_link", "requested_by", "decided_by", "created_at"]
    list_filter = ["status", "kind", "created_at"]
    search_fields = ["payment__student__email", "payment__teacher__email", "stripe_refund_id",
                     "payment__stripe_payment_intent_id"]
    list_select_related = ["payment", "requested_by", "decided_by"]
    # payment and amount_cents stay read-only (never form fields); the page shows them as
    # payment_summary and amount_detail.
    readonly_fields = ["payment", "amount_cents", "payment_summary", "amount_detail", "status", "kind", "reason",
                       "failure_reason", "requested_by", "decided_by", "decided_at", "stripe_refund_id", "applied",
                       "request_id", "created_at", "updated_at"]
    fields = ["payment_summary", "amount_detail", "status", "kind", "reason", "decision_note", "failure_reason",
              "requested_by", "decided_by", "decided_at", "stripe_refund_id", "applied", "request_id", "created_at",
              "updated_at"]
    actions = ["approve", "reject"]
    reject_confirmation_template = "admin/stripe_payments/refundrequest/reject_confirmation.html"

    amount = dollars("amount_cents", "Amount")
    amount_detail = dollars("amount_cents", "Amount", detail=True)

    @admin.display(description="Payment", ordering="payment")
    def payment_link(self, refund: RefundRequest) -> str:
        url = reverse("admin:stripe_payments_payment_change", args=[refund.payment_id])
        return format_html('<a href="{}">#{}</a>', url, refund.payment_id)

    @admin.display(description="Payment")
    def payment_summary(self, refund: RefundRequest) -> str:
        payment = refund.payment
        url = reverse("admin:stripe_payments_payment_change", args=[payment.pk])
        return format_html('<a href="{}">#{}</a>: {}, {}; refunded so far {}', url, payment.pk,
                           format_dollars(payment.amount_cents), payment.get_status_display(),
                           format_dollars(payment.refunded_cents))

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

    @admin.action(description="Reject with a note…")
    def reject(self, request, queryset):
        """First a confirmation page that asks for the note (as Django's delete_selected does);
        its form posts back here with ``post``, and the selected requests are rejected with it."""
        queryset = queryset.select_related("payment__student")
        if request.POST.get("post"):
            form = RejectForm(request.POST)
            if form.is_valid():
                done, errors = 0, []
                for refund in queryset:
                    try:
                        refunds.refund_request_reject(admin=request.user, refund_request_id=refund.pk,
                                                      note=form.cleaned_data["note"])
                        done += 1
                    except DomainError as exc:
                        errors.append(f"refund {refund.pk}: {exc.message}")
                _report(self, request, done, errors, "refund request(s) rejected")
                return None  # back to the changelist
        else:
            # The note already written on the requests' change page, when they share one.
            notes = {refund.decision_note for refund in queryset}
            form = RejectForm(initial={"note": notes.pop() if len(notes) == 1 else ""})
        rows = [(refund, format_dollars(refund.amount_cents), _why_not_rejectable(refund)) for refund in queryset]
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject refund requests",
            "subtitle": None,
            "opts": self.opts,
            "rows": rows,
            "rejectable": sum(1 for *_, why in rows if not why),
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "cancel_url": request.get_full_path(),
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.reject_confirmation_template, context)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["stripe_event_id", "type", "status", "attempts", "object_id", "received_at", "processed_at"]
    list_filter = ["status", "type"]
    search_fields = ["stripe_event_id", "object_id", "payment_intent_id", "=request_id"]
    readonly_fields = ["request_id"]
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


# --- Stripe Connect and the ledger ------------------------------------------------------------------------
def _payment_link(payment_id: int) -> str:
    url = reverse("admin:stripe_payments_payment_change", args=[payment_id])
    return format_html('<a href="{}">#{}</a>', url, payment_id)


class PaymentIdSearchMixin:
    """``=payment__id`` among the search fields only when the search is a number (another word would
    make the integer lookup fail, and the changelist answer ``?e=1``)."""

    def get_search_fields(self, request):
        fields = super().get_search_fields(request)
        return fields if request.GET.get("q", "").strip().isdigit() else [f for f in fields if f != "=payment__id"]


@admin.register(ConnectedAccount)
class ConnectedAccountAdmin(ReadOnlyAdmin):
    """Kept in step with Stripe by ``account.updated``: read-only here."""

    list_display = ["teacher", "stripe_account_id", "charges_enabled", "payouts_enabled", "details_submitted",
                    "transfers_active", "updated_at"]
    list_filter = ["charges_enabled", "payouts_enabled", "transfers_active"]
    search_fields = ["teacher__email", "stripe_account_id"]
    list_select_related = ["teacher"]


@admin.register(TeacherTransfer)
class TeacherTransferAdmin(PaymentIdSearchMixin, ReadOnlyAdmin):
    list_display = ["id", "status", "amount", "reversed", "kind", "teacher", "payment_link", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["teacher__email", "stripe_transfer_id", "stripe_account_id", "=payment__id", "=request_id"]
    readonly_fields = ["request_id"]
    list_select_related = ["teacher"]

    amount = dollars("amount_cents", "Amount")
    reversed = dollars("reversed_cents", "Reversed")

    @admin.display(description="Payment", ordering="payment")
    def payment_link(self, transfer: TeacherTransfer) -> str:
        return _payment_link(transfer.payment_id)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(PaymentIdSearchMixin, ReadOnlyAdmin):
    """The append-only ledger: rows are never added, changed or deleted here. Its changelist links
    to the revenue page."""

    list_display = ["id", "movement", "account", "kind", "amount", "payment_link", "teacher", "created_at"]
    list_filter = ["account", "kind"]
    search_fields = ["movement", "=payment__id", "stripe_object_id"]
    list_select_related = ["teacher"]
    date_hierarchy = "created_at"
    change_list_template = "admin/stripe_payments/ledgerentry/change_list.html"

    amount = dollars("amount_cents", "Amount")

    @admin.display(description="Payment", ordering="payment")
    def payment_link(self, entry: LedgerEntry) -> str:
        return _payment_link(entry.payment_id)


class DisputeOpenFilter(admin.SimpleListFilter):
    title = "open"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "Open (money at stake)"), ("no", "Closed")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status__in=DISPUTE_OPEN)
        if self.value() == "no":
            return queryset.exclude(status__in=DISPUTE_OPEN)
        return queryset


@admin.register(Dispute)
class DisputeAdmin(PaymentIdSearchMixin, ReadOnlyAdmin):
    """Card holders' disputes, soonest evidence deadline first: kept in step with Stripe by the
    charge.dispute.* webhooks (evidence is submitted in Stripe's dashboard)."""

    list_display = ["stripe_dispute_id", "status", "evidence_due_by", "deadline", "amount", "reason",
                    "payment_link", "updated_at"]
    list_filter = [DisputeOpenFilter, "status", "reason"]
    search_fields = ["stripe_dispute_id", "=payment__id"]
    ordering = ["evidence_due_by", "-id"]

    amount = dollars("amount_cents", "Amount")

    @admin.display(description="Deadline")
    def deadline(self, dispute: Dispute) -> str:
        if not dispute.is_open or dispute.evidence_due_by is None:
            return "-"
        left = dispute.evidence_due_by - dt.datetime.now(dt.timezone.utc)
        if left.total_seconds() <= 0:
            return "past due"
        days, hours = left.days, left.seconds // 3600
        return f"{days} d {hours} h left" if days else f"{hours} h left"

    @admin.display(description="Payment", ordering="payment")
    def payment_link(self, dispute: Dispute) -> str:
        return _payment_link(dispute.payment_id)


# --- the revenue page (/admin/stripe_payments/revenue/) -----------------------------------------------------
REVENUE_TEMPLATE = "admin/stripe_payments/revenue.html"
REVENUE_COLUMNS = [  # (RevenueRow attribute, heading)
    ("gross_cents", "Gross"),
    ("platform_fee_cents", "Platform fees"),
    ("refunded_cents", "Refunds"),
    ("disputed_cents", "Disputes"),
    ("paid_out_cents", "Paid out"),
    ("owed_cents", "Owed"),
]
CHART = {"width": 760, "height": 260, "left": 70, "right": 10, "top": 10, "bottom": 40}


def _plain_dollars(cents: int) -> str:
    """For the CSV: 5000 -> "50.00", -250 -> "-2.50" (no $, no separators)."""
    return f"{Decimal(cents) / 100:.2f}"


def _nice_ceiling(cents: int) -> int:
    """A round top for the chart's axis: 1, 2 or 5 times a power of ten dollars, at least $1."""
    step = 100
    while True:
        for factor in (1, 2, 5):
            if cents <= step * factor:
                return step * factor
        step *= 10


def revenue_chart(rows: list[selectors_ledger.RevenueRow]) -> dict:
    """The geometry of the server-rendered SVG: per period a bar of gross and one of fees, a y axis
    in dollars with 5 ticks, and x labels (every label when few, else about 10 of them)."""
    c = CHART
    plot_w, plot_h = c["width"] - c["left"] - c["right"], c["height"] - c["top"] - c["bottom"]
    top = _nice_ceiling(max([r.gross_cents for r in rows] + [r.platform_fee_cents for r in rows] + [0]))
    slot = plot_w / max(len(rows), 1)
    bar = max(slot * 0.4, 1)
    every = max(1, -(-len(rows) // 10))
    baseline = c["top"] + plot_h

    def y(cents: int) -> float:
        return baseline - plot_h * max(cents, 0) / top

    bars, labels = [], []
    for i, row in enumerate(rows):
        x = c["left"] + i * slot + slot * 0.1
        for offset, cents, kind in ((0, row.gross_cents, "gross"), (bar, row.platform_fee_cents, "fees")):
            bars.append({"x": round(x + offset, 1), "y": round(y(cents), 1), "width": round(bar, 1),
                         "height": round(baseline - y(cents), 1), "kind": kind,
                         "title": f"{row.label} {kind}: {format_dollars(cents)}"})
        if i % every == 0:
            labels.append({"x": round(c["left"] + (i + 0.5) * slot, 1), "y": baseline + 16,
                           "text": row.label[5:] if row.period == "day" else row.label})
    ticks = [{"y": round(y(top * k // 4), 1), "text": format_dollars(top * k // 4)} for k in range(5)]
    return {**c, "bars": bars, "labels": labels, "ticks": ticks, "baseline": baseline,
            "plot_right": c["width"] - c["right"], "x_title_y": c["height"] - 4,
            "x_title": "Day (UTC)" if rows and rows[0].period == "day" else "Month (UTC)"}


def _revenue_csv(report: selectors_ledger.RevenueReport) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"revenue-{report.period}-{report.since}-{report.until}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    header = [report.period]
    for attribute, _ in REVENUE_COLUMNS:
        header += [attribute, attribute.removesuffix("_cents")]
    writer.writerow(header)
    for row in report.rows:
        values = [row.label]
        for attribute, _ in REVENUE_COLUMNS:
            cents = getattr(row, attribute)
            values += [cents, _plain_dollars(cents)]
        writer.writerow(values)
    return response


def _parse_date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def revenue_view(request):
    """Staff only (``admin_view``), and only who may view the ledger: per day (the last 30 days) or
    per month (``?period=month``, the last 12), optionally ``?since=YYYY-MM-DD&until=YYYY-MM-DD``;
    ``?format=csv`` downloads the table."""
    ledger_admin = admin.site._registry.get(LedgerEntry)
    if ledger_admin is None or not ledger_admin.has_view_permission(request):
        raise PermissionDenied
    period = request.GET.get("period", "day")
    if period not in selectors_ledger.PERIODS:
        period = "day"
    since, until = selectors_ledger.default_range(period)
    since = _parse_date(request.GET.get("since")) or since
    until = _parse_date(request.GET.get("until")) or until
    if since > until:
        since, until = until, since
    report = selectors_ledger.revenue_report(period=period, since=since, until=until)
    if request.GET.get("format") == "csv":
        return _revenue_csv(report)
    rows = [(row, [format_dollars(getattr(row, a)) for a, _ in REVENUE_COLUMNS]) for row in report.newest_first()]
    totals = [format_dollars(getattr(report.totals, a)) for a, _ in REVENUE_COLUMNS] if report.totals else []
    query = {"period": period, "since": report.since.isoformat(), "until": report.until.isoformat()}
    context = {
        **admin.site.each_context(request),
        "title": "Revenue",
        "subtitle": None,
        "opts": LedgerEntry._meta,
        "report": report,
        "period": period,
        "columns": [heading for _, heading in REVENUE_COLUMNS],
        "rows": rows,
        "totals": totals,
        "chart": revenue_chart(report.rows),
        "csv_query": "&".join(f"{k}={v}" for k, v in {**query, "format": "csv"}.items()),
        "day_query": "period=day",
        "month_query": "period=month",
    }
    request.current_app = admin.site.name
    return TemplateResponse(request, REVENUE_TEMPLATE, context)


def _with_revenue_url(site: admin.AdminSite) -> None:
    """Put the revenue page at ``<admin>/stripe_payments/revenue/`` (before the app index and the
    catch-all, which would answer it otherwise), named ``admin:stripe_payments_revenue``. A
    ModelAdmin's own urls live under ``stripe_payments/<model>/``, so the site's urls are extended."""
    if getattr(site, "_revenue_url_added", False):
        return
    site_urls = site.get_urls

    def get_urls():
        return [path("stripe_payments/revenue/", site.admin_view(revenue_view), name="stripe_payments_revenue"),
                *site_urls()]

    site.get_urls = get_urls
    site._revenue_url_added = True


_with_revenue_url(admin.site)
