"""Django admin for staff, through Django's test client: refund actions, the payment refund action,
webhook replay, read-only money, changelists with search and filters."""

from __future__ import annotations

import json
import time

import pytest

from bookings.models import Booking, BookingStatus
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


def test_the_reject_action_rejects_with_the_note_and_moves_no_money(staff, paid, student, admin_user,
                                                                    stripe_emulator):
    payment = paid()
    request = refunds.refund_request_create(student=student, payment=payment, amount_cents=1000, reason="")

    messages = action(staff, REFUND_REQUESTS, "reject", [request.pk])

    assert "1 refund request(s) rejected." in messages
    request.refresh_from_db()
    assert (request.status, request.decided_by_id) == (RefundRequestStatus.REJECTED, admin_user.pk)
    assert request.decision_note and request.decided_at
    assert stripe_calls(stripe_emulator, "POST", "/v1/refunds") == []


def test_the_refund_request_form_edits_only_the_decision_note(staff, paid, student):
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
    # The note is what the reject action records.
    action(staff, REFUND_REQUESTS, "reject", [request.pk])
    request.refresh_from_db()
    assert (request.status, request.decision_note) == (RefundRequestStatus.REJECTED, "will check with the teacher")


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
    from django.contrib import admin as django_admin

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
