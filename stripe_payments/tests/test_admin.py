"""Django admin for staff, through Django's test client: refund actions (reject through its note
page), the payment refund action, webhook replay, read-only money, amounts in dollars, changelist
columns, search and filters."""

from __future__ import annotations

import json
import re
import time

import pytest
from django.contrib import admin as django_admin
from django.core import mail

from bookings.models import Booking, BookingStatus
from linguaflex.money import format_dollars, format_dollars_and_cents
from stripe_payments.admin import REJECT_NOTE_MAX_LENGTH
from stripe_payments.models import (
    Payment,
    PaymentStatus,
    RefundKind,
    RefundRequest,
    RefundRequestStatus,
    WebhookEvent,
    WebhookEventStatus,
)
from stripe_payments.services import refunds, webhooks

from .conftest import stripe_calls

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]

PAYMENTS = "/admin/stripe_payments/payment/"
REFUND_REQUESTS = "/admin/stripe_payments/refundrequest/"
WEBHOOK_EVENTS = "/admin/stripe_payments/webhookevent/"


@pytest.fixture
def staff(client, admin_user):
    assert admin_user.is_staff and admin_user.is_superuser
    client.force_login(admin_user)
    return client


def action(client, url: str, name: str, ids: list[int]):
    response = client.post(url, {"action": name, "_selected_action": [str(i) for i in ids], "index": "0"}, follow=True)
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


def reject_page(client, ids: list[int], url: str = REFUND_REQUESTS):
    """The reject action as the changelist sends it: the note page, nothing rejected yet."""
    response = client.post(url, {"action": "reject", "_selected_action": [str(i) for i in ids], "index": "0"})
    assert response.status_code == 200
    assert "admin/stripe_payments/refundrequest/reject_confirmation.html" in [t.name for t in response.templates]
    return response


def confirm_reject(client, ids: list[int], note: str, *, follow: bool = True):
    """What the note page's form posts: the selected ids, the action, "post" and the note."""
    return client.post(REFUND_REQUESTS, {"action": "reject", "_selected_action": [str(i) for i in ids],
                                         "post": "yes", "note": note}, follow=follow)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- refund requests ----------------------------------------------------------------------------------
def test_the_approve_action_issues_each_selected_refund_once(staff, paid, student, other_student, admin_user,
                                                              stripe_emulator):
    first, second = paid(), paid(as_student=other_student)
    requests = [refunds.refund_request_create(student=student, payment=first, amount_cents=1000, reason=""),
                refunds.refund_request_create(student=other_student, payment=second, amount_cents=None, reason="")]

    messages = action(staff, REFUND_REQUESTS, "approve", [r.pk for r in requests])

    assert "2 refund request(s) approved." in messages
    for request in requests:
        request.refresh_from_db()
        assert (request.status, request.decided_by_id) == (RefundRequestStatus.SUCCEEDED, admin_user.pk)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.refunded_cents, second.status) == (1000, PaymentStatus.REFUNDED)
    assert len(stripe_calls(stripe_emulator, "POST", "/v1/refunds")) == 2

    # Approving them again: an error message each, no new Stripe refund.
    messages = action(staff, REFUND_REQUESTS, "approve", [r.pk for r in requests])
    assert sum("succeeded" in m for m in messages) == 2
    assert len(stripe_calls(stripe_emulator, "POST", "/v1/refunds")) == 2


def test_the_reject_action_first_shows_a_page_asking_for_a_note(staff, paid, student):
    payment = paid()
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=1234, reason="")

    page = reject_page(staff, [request.pk])

    html = page.content.decode()
    assert "Reject refund requests" in html and "$12.34" in html and student.email in html
    assert f'<input type="hidden" name="_selected_action" value="{request.pk}">' in html
    assert '<input type="hidden" name="action" value="reject">' in html
    assert '<input type="hidden" name="post" value="yes">' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert '<textarea name="note"' in html and f'maxlength="{REJECT_NOTE_MAX_LENGTH}"' in html and "required" in html
    assert "Cannot be rejected" not in html
    assert f'href="{REFUND_REQUESTS}"' in html  # Cancel: back to the changelist
    request.refresh_from_db()
    assert (request.status, request.decided_by_id, request.decision_note) == (RefundRequestStatus.PENDING, None, "")


def test_the_note_page_keeps_the_changelist_filters_for_cancel(staff, paid, student):
    request = refunds.refund_request_create(student=student, payment=paid(), amount_cents=1000, reason="")

    page = reject_page(staff, [request.pk], url=f"{REFUND_REQUESTS}?status__exact=pending")

    assert page.context["cancel_url"] == f"{REFUND_REQUESTS}?status__exact=pending"


@pytest.mark.parametrize("note", ["", "   \n  ", "x" * (REJECT_NOTE_MAX_LENGTH + 1)])
def test_rejecting_needs_a_note_of_at_most_500_characters(staff, paid, student, note):
    request = refunds.refund_request_create(student=student, payment=paid(), amount_cents=1000, reason="")

    response = confirm_reject(staff, [request.pk], note, follow=False)

    assert response.status_code == 200  # the page again, with the error
    assert response.context["form"].errors["note"]
    html = response.content.decode()
    assert "errornote" in html and f'name="_selected_action" value="{request.pk}"' in html
    request.refresh_from_db()
    assert (request.status, request.decided_by_id) == (RefundRequestStatus.PENDING, None)


def test_confirming_rejects_with_the_note_tells_the_student_and_moves_no_money(
        staff, paid, student, teacher, admin_user, stripe_emulator, django_capture_on_commit_callbacks):
    payment = paid()
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=1000, reason="")
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = confirm_reject(staff, [request.pk], "  The lesson was given in full.  ", follow=False)

    assert response.status_code == 302 and response["Location"] == REFUND_REQUESTS
    assert "1 refund request(s) rejected." in messages_of(staff.get(REFUND_REQUESTS))
    request.refresh_from_db()
    assert (request.status, request.decided_by_id, request.decision_note) == (
        RefundRequestStatus.REJECTED, admin_user.pk, "The lesson was given in full.")
    assert request.decided_at
    assert stripe_calls(stripe_emulator, "POST", "/v1/refunds") == []
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.SUCCEEDED, 0)
    to_student = [m for m in mail.outbox if m.to == [student.email] and "rejected" in m.subject]
    assert to_student and "The lesson was given in full." in to_student[0].body
    assert any(m.to == [teacher.email] for m in mail.outbox)


def test_the_note_written_on_the_change_page_is_offered_and_can_be_changed(staff, paid, student):
    payment = paid()
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=1000, reason="")
    url = f"{REFUND_REQUESTS}{request.pk}/change/"
    page = staff.get(url)
    assert page.status_code == 200
    assert 'name="decision_note"' in page.content.decode()
    assert 'name="amount_cents"' not in page.content.decode()

    response = staff.post(url, {"decision_note": "will check with the teacher", "amount_cents": "1",
                                "status": "succeeded"})
    assert response.status_code == 302
    request.refresh_from_db()
    assert (request.decision_note, request.amount_cents, request.status) == (
        "will check with the teacher", 1000, RefundRequestStatus.PENDING)

    # The note page starts from it, and the note confirmed is the one recorded.
    assert reject_page(staff, [request.pk]).context["form"]["note"].value() == "will check with the teacher"
    confirm_reject(staff, [request.pk], "Checked: the lesson took place.")
    request.refresh_from_db()
    assert (request.status, request.decision_note) == (RefundRequestStatus.REJECTED, "Checked: the lesson took place.")


def test_requests_that_cannot_be_rejected_are_reported_not_rejected(staff, paid, student, other_student,
                                                                    admin_user):
    decided = refunds.refund_request_create(student=student, payment=paid(), amount_cents=1000, reason="")
    refunds.refund_request_approve(admin=admin_user, refund_request_id=decided.pk)
    owed_payment = paid(as_student=other_student)
    # A refund owed for a closed booking, still pending (as after a lost Stripe answer).
    owed = RefundRequest.objects.create(payment=owed_payment, amount_cents=owed_payment.amount_cents,
                                        kind=RefundKind.DECLINE, requested_by=owed_payment.teacher)
    rejectable = refunds.refund_request_create(student=student, payment=paid(), amount_cents=500, reason="")
    ids = [decided.pk, owed.pk, rejectable.pk]

    page = reject_page(staff, ids).content.decode()
    assert page.count("Cannot be rejected") == 2
    assert "already succeeded" in page and "can be approved, not rejected" in page

    response = confirm_reject(staff, ids, "No refund for this lesson.")

    assert response.status_code == 200
    messages = messages_of(response)
    assert "1 refund request(s) rejected." in messages
    assert any(m.startswith(f"refund {decided.pk}:") and "succeeded" in m for m in messages)
    assert any(m.startswith(f"refund {owed.pk}:") and "approved, not rejected" in m for m in messages)
    statuses = dict(RefundRequest.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert statuses == {decided.pk: RefundRequestStatus.SUCCEEDED, owed.pk: RefundRequestStatus.PENDING,
                        rejectable.pk: RefundRequestStatus.REJECTED}


def test_a_page_of_only_unrejectable_requests_says_so(staff, paid, student):
    request = refunds.refund_request_create(student=student, payment=paid(), amount_cents=1000, reason="")
    confirm_reject(staff, [request.pk], "no")

    page = reject_page(staff, [request.pk]).content.decode()

    assert "None of the selected requests can be rejected." in page
    response = confirm_reject(staff, [request.pk], "again")
    assert any(m.startswith(f"refund {request.pk}:") and "rejected" in m for m in messages_of(response))
    request.refresh_from_db()
    assert request.decision_note == "no"


def test_refund_requests_cannot_be_added_or_deleted_in_admin(staff, paid, student):
    request = refunds.refund_request_create(student=student, payment=paid(), amount_cents=1000, reason="")
    assert staff.get(f"{REFUND_REQUESTS}add/").status_code == 403
    assert staff.post(f"{REFUND_REQUESTS}{request.pk}/delete/", {"post": "yes"}).status_code == 403
    assert RefundRequest.objects.filter(pk=request.pk).exists()


# --- payments -----------------------------------------------------------------------------------------------
def test_the_payment_refund_in_full_action_refunds_what_is_left(staff, paid, admin_user, stripe_emulator):
    payment = paid()
    refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=1000, reason="")

    messages = action(staff, PAYMENTS, "refund_in_full", [payment.pk])

    assert "1 payment(s) refunded." in messages
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents, payment.refunded_admin_fee_cents) == (
        PaymentStatus.REFUNDED, payment.amount_cents, payment.admin_fee_cents)
    last = RefundRequest.objects.filter(payment=payment).order_by("-id").first()
    assert (last.kind, last.amount_cents, last.decided_by_id) == (RefundKind.ADMIN, payment.amount_cents - 1000,
                                                                  admin_user.pk)
    assert Booking.objects.get(payment=payment).status == BookingStatus.REFUNDED

    messages = action(staff, PAYMENTS, "refund_in_full", [payment.pk])
    assert any(f"payment {payment.pk}:" in m for m in messages)
    assert len(stripe_calls(stripe_emulator, "POST", "/v1/refunds")) == 2


def test_a_payments_money_cannot_be_edited_in_admin(staff, paid):
    payment = paid()
    url = f"{PAYMENTS}{payment.pk}/change/"
    page = staff.get(url)
    assert page.status_code == 200  # view only
    html = page.content.decode()
    assert 'name="amount_cents"' not in html and 'name="refunded_cents"' not in html
    assert 'name="_save"' not in html

    response = staff.post(url, {"amount_cents": "1", "status": "refunded", "refunded_cents": "5000"})
    assert response.status_code == 403
    payment.refresh_from_db()
    assert (payment.amount_cents, payment.status, payment.refunded_cents) == (5000, PaymentStatus.SUCCEEDED, 0)
    assert staff.get(f"{PAYMENTS}add/").status_code == 403
    assert staff.post(f"{PAYMENTS}{payment.pk}/delete/", {"post": "yes"}).status_code == 403


def test_the_model_admins_deny_changing_an_object(rf, admin_user, paid):
    request = rf.get("/")
    request.user = admin_user
    payment = paid()
    for model in (Payment, WebhookEvent, Booking):
        model_admin = django_admin.site._registry[model]
        obj = model.objects.first() or payment
        if model is Booking:
            assert set(model_admin.get_readonly_fields(request, obj)) >= {"payment", "status"}
        else:
            assert model_admin.has_change_permission(request, obj) is False
    refund_admin = django_admin.site._registry[RefundRequest]
    assert {"amount_cents", "status", "payment", "applied"} <= set(refund_admin.get_readonly_fields(request))


@pytest.mark.parametrize("url", [PAYMENTS, REFUND_REQUESTS, WEBHOOK_EVENTS, "/admin/bookings/booking/",
                                 "/admin/stripe_payments/savedpaymentmethod/",
                                 "/admin/stripe_payments/stripecustomer/"])
def test_changelists_render_and_search_by_email(url, staff, paid, student, other_student, make_gig):
    payment = paid()
    refunds.refund_request_create(student=student, payment=payment, amount_cents=100, reason="")
    page = staff.get(url)
    assert page.status_code == 200
    response = staff.get(url, {"q": student.email})
    assert response.status_code == 200
    if url in (PAYMENTS, REFUND_REQUESTS, "/admin/bookings/booking/"):
        assert response.context["cl"].result_count == 1
        assert staff.get(url, {"q": other_student.email}).context["cl"].result_count == 0


def test_changelists_filter_and_search_by_stripe_id(staff, paid, student):
    payment = paid()
    assert staff.get(PAYMENTS, {"status__exact": "succeeded"}).context["cl"].result_count == 1
    assert staff.get(PAYMENTS, {"status__exact": "refunded"}).context["cl"].result_count == 0
    assert staff.get(PAYMENTS, {"q": payment.stripe_payment_intent_id}).context["cl"].result_count == 1
    refunds.refund_request_create(student=student, payment=payment, amount_cents=100, reason="")
    assert staff.get(REFUND_REQUESTS, {"status__exact": "pending"}).context["cl"].result_count == 1
    assert staff.get(REFUND_REQUESTS, {"status__exact": "rejected", "kind__exact": "requested"}
                     ).context["cl"].result_count == 0


def test_admin_is_for_staff_only(client, student):
    client.force_login(student)
    response = client.get(PAYMENTS)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# --- webhook events -------------------------------------------------------------------------------------------
def _failed_event(client, monkeypatch, paid, stripe_emulator) -> tuple[WebhookEvent, Payment]:
    import stripe

    from .test_webhooks import sign

    payment = paid()
    stripe.StripeClient("sk_test_dashboard", base_addresses={"api": stripe_emulator.base_url}).v1.refunds.create(
        params={"payment_intent": payment.stripe_payment_intent_id, "amount": 700})
    [event] = stripe_emulator.events("refund.created")

    def broken(_event):
        raise RuntimeError("database hiccup")

    monkeypatch.setitem(webhooks.HANDLERS, "refund.created", broken)
    payload = json.dumps(event).encode()
    response = client.post("/stripe-payments/webhook/", data=payload, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=sign(payload, timestamp=int(time.time())))
    assert response.status_code == 500
    monkeypatch.undo()
    stored = WebhookEvent.objects.get(stripe_event_id=event["id"])
    assert stored.status == WebhookEventStatus.FAILED
    return stored, payment


def test_the_replay_action_processes_a_failed_event(staff, monkeypatch, paid, stripe_emulator):
    stored, payment = _failed_event(staff, monkeypatch, paid, stripe_emulator)
    assert staff.get(WEBHOOK_EVENTS, {"status__exact": "failed"}).context["cl"].result_count == 1
    assert staff.get(WEBHOOK_EVENTS, {"type__exact": "refund.created"}).context["cl"].result_count == 1
    assert staff.get(WEBHOOK_EVENTS, {"q": stored.stripe_event_id}).context["cl"].result_count == 1

    messages = action(staff, WEBHOOK_EVENTS, "replay", [stored.pk])

    assert "1 event(s) processed." in messages
    stored.refresh_from_db()
    assert (stored.status, stored.attempts) == (WebhookEventStatus.PROCESSED, 2)
    payment.refresh_from_db()
    assert payment.refunded_cents == 700
    # Replaying a processed event changes nothing.
    action(staff, WEBHOOK_EVENTS, "replay", [stored.pk])
    stored.refresh_from_db()
    assert stored.attempts == 2
    payment.refresh_from_db()
    assert payment.refunded_cents == 700


def test_a_webhook_event_cannot_be_edited_in_admin(staff, monkeypatch, paid, stripe_emulator):
    stored, _ = _failed_event(staff, monkeypatch, paid, stripe_emulator)
    url = f"{WEBHOOK_EVENTS}{stored.pk}/change/"
    assert staff.get(url).status_code == 200
    assert staff.post(url, {"status": "processed"}).status_code == 403
    stored.refresh_from_db()
    assert stored.status == WebhookEventStatus.FAILED


# --- amounts in dollars, columns ------------------------------------------------------------------------------
@pytest.mark.parametrize(("cents", "dollars"), [
    (0, "$0.00"), (5, "$0.05"), (50, "$0.50"), (5000, "$50.00"), (123456, "$1,234.56"),
    (100_000_000, "$1,000,000.00"), (-250, "-$2.50"),
])
def test_amounts_are_written_in_dollars_with_thousands_separators(cents, dollars):
    assert format_dollars(cents) == dollars
    assert format_dollars_and_cents(cents) == f"{dollars} ({cents} cents)"


def column_texts(response, column: str) -> list[str]:
    """The text of one changelist column, top to bottom (by its header's name)."""
    html = response.content.decode()
    return [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(rf'<td class="field-{column}[^"]*">(.*?)</td>', html)]


def test_the_payment_changelist_shows_dollars_and_sorts_them_by_cents(staff, paid):
    small, large = paid(900), paid(123456)

    page = staff.get(PAYMENTS)

    html = page.content.decode()
    assert ">Amount<" in html and ">Refunded<" in html
    assert set(column_texts(page, "amount")) == {"$9.00", "$1,234.56"}
    assert set(column_texts(page, "refunded")) == {"$0.00"}
    model_admin = django_admin.site._registry[Payment]
    assert (model_admin.amount.admin_order_field, model_admin.refunded.admin_order_field) == (
        "amount_cents", "refunded_cents")
    # By cents, not by text ("$1,234.56" < "$9.00" as strings).
    index = page.context["cl"].list_display.index("amount")
    ascending = staff.get(PAYMENTS, {"o": str(index)})
    assert [p.pk for p in ascending.context["cl"].result_list] == [small.pk, large.pk]
    assert column_texts(ascending, "amount") == ["$9.00", "$1,234.56"]
    descending = staff.get(PAYMENTS, {"o": f"-{index}"})
    assert [p.pk for p in descending.context["cl"].result_list] == [large.pk, small.pk]


def test_the_payment_page_shows_every_amount_in_dollars_and_cents(staff, paid, admin_user):
    payment = paid()  # 5000: fee 500, share 4500
    refunds.admin_refund_create(admin=admin_user, payment=payment, amount_cents=1000, reason="")

    html = staff.get(f"{PAYMENTS}{payment.pk}/change/").content.decode()

    for shown in ("$50.00 (5000 cents)", "$5.00 (500 cents)", "$45.00 (4500 cents)", "$10.00 (1000 cents)",
                  "$1.00 (100 cents)", "$9.00 (900 cents)", "$40.00 (4000 cents)"):
        assert shown in html, shown
    for label in ("Amount", "Platform fee", "Teacher&#x27;s share", "Refunded", "Left to refund"):
        assert f">{label}:<" in html, label
    assert payment.stripe_payment_intent_id in html and payment.card_last4 in html


def test_the_payment_page_shows_staff_stripes_own_text_beside_the_students_message(staff, paid):
    payment = paid()
    Payment.objects.filter(pk=payment.pk).update(
        failure_code="card_declined", decline_code="lost_card",
        failure_message="Your card was declined. Use another card or contact your bank.",
        provider_failure_message="Your card has been declined (lost_card).")

    html = staff.get(f"{PAYMENTS}{payment.pk}/change/").content.decode()

    assert "Your card has been declined (lost_card)." in html
    assert "Your card was declined. Use another card or contact your bank." in html


def test_the_payment_page_leaves_no_field_out(rf, admin_user, paid):
    """Every model field is on the page: in a fieldset, in dollars, or under "Other" once added."""
    request = rf.get("/")
    request.user = admin_user
    model_admin = django_admin.site._registry[Payment]
    shown = {name for _, options in model_admin.get_fieldsets(request, paid()) for name in options["fields"]}
    fields = {f.name for f in Payment._meta.concrete_fields if not f.primary_key}
    assert fields - shown <= set(model_admin.CENTS_FIELDS)
    assert shown <= set(model_admin.get_readonly_fields(request))


def test_the_refund_request_changelist_and_page_show_dollars(staff, paid, student, other_student):
    small = refunds.refund_request_create(student=student, payment=paid(), amount_cents=1000, reason="")
    large = refunds.refund_request_create(student=other_student, payment=paid(123456, as_student=other_student),
                                          amount_cents=None, reason="")

    page = staff.get(REFUND_REQUESTS)
    assert set(column_texts(page, "amount")) == {"$10.00", "$1,234.56"}
    assert django_admin.site._registry[RefundRequest].amount.admin_order_field == "amount_cents"
    index = page.context["cl"].list_display.index("amount")
    assert [r.pk for r in staff.get(REFUND_REQUESTS, {"o": str(index)}).context["cl"].result_list] == [
        small.pk, large.pk]
    assert column_texts(page, "payment_link") == [f"#{large.payment_id}", f"#{small.payment_id}"]

    html = staff.get(f"{REFUND_REQUESTS}{small.pk}/change/").content.decode()
    assert "$10.00 (1000 cents)" in html
    assert f'<a href="{PAYMENTS}{small.payment_id}/change/">#{small.payment_id}</a>: $50.00, Succeeded' in html
    assert "5000c" not in html  # the payment's __str__


def test_the_payment_changelist_columns_put_the_status_first_after_the_id():
    assert django_admin.site._registry[Payment].list_display == [
        "id", "status", "amount", "refunded", "student", "teacher", "gig_title", "card", "created_at"]


def test_the_refund_request_changelist_columns_put_the_status_first_after_the_id():
    assert django_admin.site._registry[RefundRequest].list_display == [
        "id", "status", "amount", "kind", "payment_link", "requested_by", "decided_by", "created_at"]


@pytest.mark.parametrize("model", [Payment, RefundRequest, Booking])
def test_changelists_are_short_and_status_is_among_the_first_columns(model):
    list_display = django_admin.site._registry[model].list_display
    assert len(list_display) <= 9
    assert list_display[0] == "id" and "status" in list_display[:3]
    assert not [c for c in list_display if c.startswith("stripe_")]  # long ids: detail page and search


def test_the_payment_changelist_shows_the_card_in_one_column(staff, paid):
    payment = paid()
    assert column_texts(staff.get(PAYMENTS), "card") == [f"{payment.card_brand} •••• {payment.card_last4}"]
