"""The refund endpoints (views/refunds.py): refund requests, decisions and admin refunds through the
API (roles, scoping, error envelope), against the in-process Stripe emulator."""

from __future__ import annotations

import pytest

from bookings.models import Booking, BookingStatus
from stripe_payments.models import Payment, PaymentStatus, RefundRequest, RefundRequestStatus

from .conftest import ADMIN_REFUNDS_URL, REFUNDS_URL, error_of, refund_posts

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]


REFUND_FIELDS = {"id", "payment_id", "amount", "amount_cents", "status", "reason", "decision_note", "failure_reason",
                 "requested_by", "decided_by", "decided_at", "created_at"}


def approve_url(refund_id: int) -> str:
    return f"{REFUNDS_URL}{refund_id}/approve/"


def reject_url(refund_id: int) -> str:
    return f"{REFUNDS_URL}{refund_id}/reject/"


@pytest.fixture
def requested(paid, client_for, student):
    """A payment and a pending refund request of 20.00 for it, made through the API."""
    payment = paid()
    response = client_for(student).post(REFUNDS_URL, {"payment_id": payment.pk, "reason": "sick", "amount": "20.00"},
                                        format="json")
    assert response.status_code == 201, response.content
    return payment, RefundRequest.objects.get(pk=response.json()["id"])


# --- requesting -------------------------------------------------------------------------------------------
def test_the_student_requests_a_refund_of_own_payment_and_gets_201_pending(paid, client_for, student, stripe_emulator):
    payment = paid()
    response = client_for(student).post(REFUNDS_URL, {"payment_id": payment.pk, "reason": "sick", "amount": "12.34"},
                                        format="json")
    assert response.status_code == 201
    body = response.json()
    assert REFUND_FIELDS <= set(body)
    assert (body["status"], body["amount"], body["amount_cents"], body["payment_id"], body["reason"]) == (
        "pending", 12.34, 1234, payment.pk, "sick")
    assert (body["requested_by"], body["decided_by"], body["decided_at"]) == (student.pk, None, None)
    assert refund_posts(stripe_emulator) == []


def test_a_request_without_amount_asks_for_all_that_is_left(paid, client_for, student):
    payment = paid()
    response = client_for(student).post(REFUNDS_URL, {"payment_id": payment.pk, "reason": ""}, format="json")
    assert response.status_code == 201
    assert response.json()["amount_cents"] == payment.amount_cents


def test_another_students_payment_is_404(paid, client_for, other_student):
    payment = paid()
    response = client_for(other_student).post(REFUNDS_URL, {"payment_id": payment.pk}, format="json")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert not RefundRequest.objects.exists()


@pytest.mark.parametrize("who", ["teacher", "admin_user"])
def test_the_teacher_or_an_admin_requesting_on_a_visible_payment_is_403(who, request, paid, client_for):
    payment = paid()
    response = client_for(request.getfixturevalue(who)).post(REFUNDS_URL, {"payment_id": payment.pk}, format="json")
    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"
    assert not RefundRequest.objects.exists()


def test_a_second_pending_request_is_409_refund_pending(requested, client_for, student):
    payment, _ = requested
    response = client_for(student).post(REFUNDS_URL, {"payment_id": payment.pk, "amount": "1.00"}, format="json")
    assert response.status_code == 409
    assert error_of(response)["code"] == "refund_pending"
    assert RefundRequest.objects.count() == 1


@pytest.mark.parametrize("amount", ["50.01", "1000.00"])
def test_an_amount_beyond_what_is_left_is_400_with_fields_amount(amount, paid, client_for, student):
    payment = paid()  # 50.00
    response = client_for(student).post(REFUNDS_URL, {"payment_id": payment.pk, "amount": amount}, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert "amount" in error["fields"]
    assert not RefundRequest.objects.exists()


@pytest.mark.parametrize("amount", ["0", "-1.00", "1.001", "abc", True])
def test_an_invalid_amount_is_400_with_fields_amount(amount, paid, client_for, student):
    payment = paid()
    response = client_for(student).post(REFUNDS_URL, {"payment_id": payment.pk, "amount": amount}, format="json")
    assert response.status_code == 400
    assert "amount" in error_of(response)["fields"]


def test_a_failed_payment_cannot_be_refunded_409(paid, client_for, student):
    payment = paid()
    Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.FAILED)
    response = client_for(student).post(REFUNDS_URL, {"payment_id": payment.pk}, format="json")
    assert response.status_code == 409
    assert error_of(response)["code"] == "invalid_state"


def test_an_idempotency_key_replays_the_first_answer_and_creates_one_request(paid, client_for, student):
    payment = paid()
    client = client_for(student)
    body = {"payment_id": payment.pk, "reason": "sick", "amount": "5.00"}
    first = client.post(REFUNDS_URL, body, format="json", headers={"Idempotency-Key": "refund-1"})
    second = client.post(REFUNDS_URL, body, format="json", headers={"Idempotency-Key": "refund-1"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert RefundRequest.objects.count() == 1

    other = client.post(REFUNDS_URL, {**body, "amount": "6.00"}, format="json", headers={"Idempotency-Key": "refund-1"})
    assert other.status_code == 409
    assert error_of(other)["code"] == "idempotency_conflict"
    # Without the key the same body is a new request: refused while the first is pending.
    assert client.post(REFUNDS_URL, body, format="json").status_code == 409


# --- listing ----------------------------------------------------------------------------------------------
def test_the_list_is_scoped_to_own_payments_own_gigs_or_all_for_admins(
        paid, client_for, student, other_student, teacher, other_teacher, admin_user, make_gig):
    mine = paid()
    other_gig = make_gig(other_teacher)
    theirs = paid(as_student=other_student, target=other_gig)
    for who, payment in ((student, mine), (other_student, theirs)):
        assert client_for(who).post(REFUNDS_URL, {"payment_id": payment.pk}, format="json").status_code == 201

    def ids(user, query=""):
        response = client_for(user).get(f"{REFUNDS_URL}{query}")
        assert response.status_code == 200
        return [r["payment_id"] for r in response.json()["results"]]

    assert ids(student) == [mine.pk]
    assert ids(other_student) == [theirs.pk]
    assert ids(teacher) == [mine.pk]
    assert ids(other_teacher) == [theirs.pk]
    assert ids(admin_user) == [theirs.pk, mine.pk]  # newest first
    assert ids(admin_user, "?status=pending") == [theirs.pk, mine.pk]
    assert ids(admin_user, "?status=succeeded") == []

    mine_request = RefundRequest.objects.get(payment=mine)
    assert client_for(admin_user).post(approve_url(mine_request.pk), {}, format="json").status_code == 200
    assert ids(student, "?status=succeeded") == [mine.pk]
    assert ids(student, "?status=pending") == []
    assert ids(admin_user, "?status=pending") == [theirs.pk]

    response = client_for(admin_user).get(f"{REFUNDS_URL}?status=bogus")
    assert response.status_code == 400
    assert "status" in error_of(response)["fields"]


def test_the_list_needs_authentication(client_for):
    assert client_for(None).get(REFUNDS_URL).status_code == 401


# --- deciding ------------------------------------------------------------------------------------------------
def test_an_admin_approves_a_request_and_stripe_refunds_it(requested, client_for, admin_user, stripe_emulator):
    payment, refund = requested
    response = client_for(admin_user).post(approve_url(refund.pk), {"note": "get well"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["decided_by"], body["decision_note"]) == ("succeeded", admin_user.pk, "get well")
    assert body["decided_at"] is not None
    assert len(refund_posts(stripe_emulator)) == 1
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.PARTIALLY_REFUNDED, 2000)
    detail = client_for(admin_user).get(f"/stripe-payments/payments/{payment.pk}/").json()
    assert (detail["refunded_cents"], detail["refunded_admin_fee_cents"], detail["refunded_teacher_cents"]) == (
        2000, 200, 1800)


def test_a_second_approval_is_409_and_stripe_refunds_once(requested, client_for, admin_user, stripe_emulator):
    _, refund = requested
    client = client_for(admin_user)
    assert client.post(approve_url(refund.pk), {}, format="json").status_code == 200
    again = client.post(approve_url(refund.pk), {}, format="json")
    assert again.status_code == 409
    assert error_of(again)["code"] == "invalid_state"
    assert len(refund_posts(stripe_emulator)) == 1


def test_an_admin_rejects_a_request_with_a_note(requested, client_for, admin_user, stripe_emulator):
    payment, refund = requested
    response = client_for(admin_user).post(reject_url(refund.pk), {"note": "the lesson was given"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["decided_by"], body["decision_note"]) == (
        "rejected", admin_user.pk, "the lesson was given")
    assert refund_posts(stripe_emulator) == []
    payment.refresh_from_db()
    assert payment.refunded_cents == 0
    assert client_for(admin_user).post(approve_url(refund.pk), {}, format="json").status_code == 409


@pytest.mark.parametrize("who", ["student", "teacher"])
@pytest.mark.parametrize("decide", [approve_url, reject_url])
def test_the_student_or_the_teacher_deciding_is_403(decide, who, request, requested, client_for, stripe_emulator):
    _, refund = requested
    response = client_for(request.getfixturevalue(who)).post(decide(refund.pk), {}, format="json")
    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"
    refund.refresh_from_db()
    assert refund.status == RefundRequestStatus.PENDING
    assert refund_posts(stripe_emulator) == []


@pytest.mark.parametrize("who", ["other_student", "other_teacher"])
@pytest.mark.parametrize("decide", [approve_url, reject_url])
def test_deciding_an_invisible_request_is_404(decide, who, request, requested, client_for):
    _, refund = requested
    assert client_for(request.getfixturevalue(who)).post(decide(refund.pk), {}, format="json").status_code == 404


def test_deciding_an_unknown_request_is_404(client_for, admin_user):
    assert client_for(admin_user).post(approve_url(999999), {}, format="json").status_code == 404


def test_a_provider_outage_at_approval_is_503_and_leaves_the_request_pending_to_approve_again(
        requested, client_for, admin_user, stripe_emulator, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    payment, refund = requested
    stripe_emulator.arm_fault("POST", "/v1/refunds", "drop_after_work")
    client = client_for(admin_user)
    response = client.post(approve_url(refund.pk), {}, format="json")
    assert response.status_code == 503
    assert error_of(response)["code"] == "payment_provider_unavailable"
    refund.refresh_from_db()
    assert refund.status == RefundRequestStatus.PENDING

    response = client.post(approve_url(refund.pk), {}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    payment.refresh_from_db()
    assert payment.refunded_cents == 2000
    with stripe_emulator.state.lock:
        assert sum(1 for o in stripe_emulator.state.objects.values() if o.get("object") == "refund") == 1


def test_an_approval_stripe_refuses_is_200_failed_with_failure_reason(requested, client_for, admin_user,
                                                                     stripe_emulator):
    payment, refund = requested
    stripe_emulator.trigger_dispute(payment.stripe_charge_id)
    response = client_for(admin_user).post(approve_url(refund.pk), {}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed" and body["failure_reason"]
    payment.refresh_from_db()
    assert payment.refunded_cents == 0


# --- admin refunds ------------------------------------------------------------------------------------------
def test_an_admin_refund_is_201_succeeded_without_a_student_request(paid, client_for, admin_user, stripe_emulator):
    payment = paid()
    response = client_for(admin_user).post(ADMIN_REFUNDS_URL, {"payment_id": payment.pk, "reason": "goodwill",
                                                               "amount": "7.50"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["amount_cents"], body["decided_by"], body["requested_by"]) == (
        "succeeded", 750, admin_user.pk, admin_user.pk)
    assert len(refund_posts(stripe_emulator)) == 1
    payment.refresh_from_db()
    assert payment.refunded_cents == 750


def test_an_admin_refund_without_amount_refunds_the_rest_and_the_booking(paid, client_for, admin_user):
    payment = paid()
    response = client_for(admin_user).post(ADMIN_REFUNDS_URL, {"payment_id": payment.pk}, format="json")
    assert response.status_code == 201
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert Booking.objects.get(payment=payment).status == BookingStatus.REFUNDED
    again = client_for(admin_user).post(ADMIN_REFUNDS_URL, {"payment_id": payment.pk}, format="json")
    assert again.status_code == 409


def test_an_admin_refund_beyond_what_is_left_is_400(paid, client_for, admin_user, stripe_emulator):
    payment = paid()
    response = client_for(admin_user).post(ADMIN_REFUNDS_URL, {"payment_id": payment.pk, "amount": "50.01"},
                                           format="json")
    assert response.status_code == 400
    assert "amount" in error_of(response)["fields"]
    assert refund_posts(stripe_emulator) == []


@pytest.mark.parametrize("who", ["student", "teacher"])
def test_admin_refunds_are_for_admins_only(who, request, paid, client_for, stripe_emulator):
    payment = paid()
    response = client_for(request.getfixturevalue(who)).post(ADMIN_REFUNDS_URL, {"payment_id": payment.pk},
                                                             format="json")
    assert response.status_code == 403
    assert refund_posts(stripe_emulator) == []
