"""The Idempotency-Key store at unit level: keyed hashes, replay, release after a 5xx, expiry."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone

from bookings.models import Booking
from linguaflex.errors import DomainError
from stripe_payments import idempotency
from stripe_payments.gateway import ProviderTimeout
from stripe_payments.idempotency import IdempotencyConflict, Outcome, purge_expired, request_hash, run_idempotent
from stripe_payments.keys import payment_key
from stripe_payments.models import IdempotencyRecord, Payment

from .conftest import DECLINED, PAY_URL, VISA, card, error_of, pi_creates, stripe_calls

BODY = {"gig_id": 1, "card_details": card(VISA, cvc="987")}


def test_request_hash_is_keyed_with_the_secret_key(settings):
    first = request_hash(scope="process-payment", data=BODY)
    settings.SECRET_KEY = "another-secret"

    assert request_hash(scope="process-payment", data=BODY) != first


def test_request_hash_holds_no_body_text_and_ignores_key_order():
    digest = request_hash(scope="process-payment", data=BODY)

    assert len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)
    assert digest == request_hash(scope="process-payment", data=dict(reversed(list(BODY.items()))))
    assert digest != request_hash(scope="add-payment-method", data=BODY)
    assert digest != request_hash(scope="process-payment", data={**BODY, "gig_id": 2})


@pytest.mark.parametrize("raw,key", [(None, None), ("", None), ("   ", None), (" abc ", "abc"), ("k" * 255, "k" * 255)])
def test_validate_key_strips_and_accepts_up_to_255_characters(raw, key):
    assert idempotency.validate_key(raw) == key


def test_validate_key_refuses_more_than_255_characters():
    with pytest.raises(DomainError) as caught:
        idempotency.validate_key("k" * 256)
    assert caught.value.status_code == 400 and "Idempotency-Key" in caught.value.fields


@pytest.mark.django_db
def test_stored_record_keeps_the_hash_and_answer_but_no_request_body(student):
    run_idempotent(user=student, key="k1", scope="process-payment", data=BODY,
                   handler=lambda first: Outcome(200, {"success": True}))

    record = IdempotencyRecord.objects.get()
    assert record.request_hash == request_hash(scope="process-payment", data=BODY)
    assert (record.response_status, record.response_body, record.in_flight) == (200, {"success": True}, False)
    assert VISA not in str(IdempotencyRecord.objects.values().get())


@pytest.mark.django_db
def test_same_key_runs_the_handler_once_and_replays(student):
    calls = []

    def handler(first):
        calls.append(1)
        return Outcome(200, {"n": len(calls)})

    first = run_idempotent(user=student, key="k", scope="s", data=BODY, handler=handler)
    second = run_idempotent(user=student, key="k", scope="s", data=BODY, handler=handler)

    assert (first.status, first.body) == (second.status, second.body) == (200, {"n": 1})
    assert len(calls) == 1


@pytest.mark.django_db
def test_same_key_with_another_body_or_scope_conflicts(student):
    run_idempotent(user=student, key="k", scope="s", data=BODY, handler=lambda first: Outcome(200, {}))

    with pytest.raises(IdempotencyConflict):
        run_idempotent(user=student, key="k", scope="s", data={**BODY, "gig_id": 2}, handler=lambda first: Outcome(200, {}))
    with pytest.raises(IdempotencyConflict):
        run_idempotent(user=student, key="k", scope="other", data=BODY, handler=lambda first: Outcome(200, {}))


@pytest.mark.django_db
def test_a_4xx_domain_error_is_stored_and_replayed(student):
    calls = []

    def handler(first):
        calls.append(1)
        raise DomainError("nope", code="card_declined", status_code=402)

    with pytest.raises(DomainError):
        run_idempotent(user=student, key="k", scope="s", data=BODY, handler=handler)
    # the second time the stored answer comes back as an outcome, without running the handler
    outcome = run_idempotent(user=student, key="k", scope="s", data=BODY, handler=handler)

    assert outcome.status == 402 and outcome.body["error"]["code"] == "card_declined"
    assert len(calls) == 1


@pytest.mark.django_db
def test_a_5xx_is_not_stored_and_the_retry_runs_the_handler_again(student):
    """The key stays, answerless and free: the retry runs the view again, whose service finds what
    the first attempt left by the same key (below: test_a_5xx_is_not_stored_and_the_retry_resumes_the_same_payment)."""
    calls = []

    def failing(first):
        calls.append("failed")
        raise ProviderTimeout()

    with pytest.raises(ProviderTimeout):
        run_idempotent(user=student, key="k", scope="s", data=BODY, handler=failing)
    record = IdempotencyRecord.objects.get()
    assert record.response_status is None and record.in_flight is False

    outcome = run_idempotent(user=student, key="k", scope="s", data=BODY,
                             handler=lambda first: calls.append("retried") or Outcome(200, {"ok": 1}))

    assert outcome.status == 200 and calls == ["failed", "retried"]
    assert IdempotencyRecord.objects.get().response_status == 200


@pytest.mark.django_db
def test_an_integrity_error_inside_the_handler_is_raised_not_taken_for_a_twin(student):
    calls = []

    def handler(first):
        calls.append(1)
        raise IntegrityError("a constraint of the handler's own write")

    with pytest.raises(IntegrityError):
        run_idempotent(user=student, key="k", scope="s", data=BODY, handler=handler)
    assert len(calls) == 1


@pytest.mark.django_db
def test_without_a_key_nothing_is_stored(student):
    outcome = run_idempotent(user=student, key=None, scope="s", data=BODY, handler=lambda first: Outcome(200, {}))

    assert outcome.status == 200
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_purge_expired_deletes_keys_older_than_24_hours_only(student):
    old = IdempotencyRecord.objects.create(user=student, key="old", scope="s", request_hash="x")
    young = IdempotencyRecord.objects.create(user=student, key="young", scope="s", request_hash="x")
    now = timezone.now()
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=now - timedelta(hours=24, seconds=1))
    IdempotencyRecord.objects.filter(pk=young.pk).update(created_at=now - timedelta(hours=23, minutes=59))

    assert purge_expired(now=now) == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["young"]


def test_the_idempotency_hash_never_covers_the_cvc():
    body = {"gig_id": 1, "card_details": {"card_number": VISA, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}
    other_cvc = {**body, "card_details": {**body["card_details"], "cvc": "999"}}
    other_card = {**body, "card_details": {**body["card_details"], "card_number": "5555555555554444"}}

    assert request_hash(scope="s", data=body) == request_hash(scope="s", data=other_cvc)
    assert request_hash(scope="s", data=body) != request_hash(scope="s", data=other_card)


# --- the Idempotency-Key header through the endpoints --------------------------------------------------------
@pytest.mark.emulator
def test_same_key_and_body_replays_the_answer_and_charges_once(stripe_emulator, pay):
    first = pay(VISA, headers={"Idempotency-Key": "order-1"})
    second = pay(VISA, headers={"Idempotency-Key": "order-1"})

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert len(pi_creates(stripe_emulator)) == 1
    assert Payment.objects.count() == 1 and Booking.objects.count() == 1


@pytest.mark.emulator
def test_a_402_is_replayed_with_the_same_key(stripe_emulator, pay):
    first = pay(DECLINED, headers={"Idempotency-Key": "order-2"})
    second = pay(DECLINED, headers={"Idempotency-Key": "order-2"})

    assert first.status_code == second.status_code == 402
    assert second.json() == first.json()
    assert len(pi_creates(stripe_emulator)) == 1
    assert Payment.objects.count() == 1


@pytest.mark.emulator
def test_same_key_with_another_body_is_409_conflict(stripe_emulator, pay, make_gig, teacher):
    other_gig = make_gig(teacher, price_cents=7000)
    assert pay(VISA, headers={"Idempotency-Key": "order-3"}).status_code == 200

    response = pay(VISA, gig_id=other_gig.pk, headers={"Idempotency-Key": "order-3"})

    assert response.status_code == 409 and error_of(response)["code"] == "idempotency_conflict"
    assert Payment.objects.count() == 1


@pytest.mark.emulator
def test_the_same_key_of_another_user_is_independent(stripe_emulator, pay, client_for, other_student):
    assert pay(VISA, headers={"Idempotency-Key": "shared"}).status_code == 200

    response = pay(VISA, client=client_for(other_student), headers={"Idempotency-Key": "shared"})

    assert response.status_code == 200
    assert Payment.objects.count() == 2


@pytest.mark.emulator
def test_add_payment_method_replays_with_the_same_key(stripe_emulator, add_card):
    first = add_card(VISA, headers={"Idempotency-Key": "card-1"})
    second = add_card(VISA, headers={"Idempotency-Key": "card-1"})

    assert second.json() == first.json()
    assert len(stripe_calls(stripe_emulator, "POST", "/v1/setup_intents")) == 1


@pytest.mark.emulator
def test_idempotency_key_longer_than_255_characters_is_400(stripe_emulator, pay):
    response = pay(VISA, headers={"Idempotency-Key": "k" * 256})

    assert response.status_code == 400
    assert "Idempotency-Key" in error_of(response)["fields"]
    assert stripe_calls(stripe_emulator) == []
    assert pay(VISA, headers={"Idempotency-Key": "k" * 255}).status_code == 200


@pytest.mark.emulator
def test_a_5xx_is_not_stored_and_the_retry_resumes_the_same_payment(stripe_emulator, pay, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    stripe_emulator.arm_fault("POST", "/v1/payment_intents", "error_500", count=2)

    failed = pay(VISA, headers={"Idempotency-Key": "order-5"})
    retried = pay(VISA, headers={"Idempotency-Key": "order-5"})

    assert failed.status_code == 502 and error_of(failed)["code"] == "payment_provider_error"
    assert retried.status_code == 200, retried.content
    payment = Payment.objects.get()  # the retry resumed the first payment
    assert retried.json()["payment_id"] == payment.pk
    keys = {c["idempotency_key"] for c in pi_creates(stripe_emulator)}
    assert keys == {payment_key(payment)}
    assert len(pi_creates(stripe_emulator)) == 3
    assert Booking.objects.count() == 1


@pytest.mark.emulator
@pytest.mark.postgres  # SQLite's shared in-memory test database answers "table is locked" under this race
@pytest.mark.django_db(transaction=True)
def test_an_in_flight_twin_waits_and_gets_the_same_answer(stripe_emulator, client_for, student, gig):
    stripe_emulator.set_latency(800)
    answers: dict[str, object] = {}

    def post(name):
        try:
            answers[name] = client_for(student).post(
                PAY_URL, {"gig_id": gig.pk, "card_details": card(VISA)}, format="json",
                headers={"Idempotency-Key": "twin"})
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            answers[name] = exc
        finally:
            connection.close()

    try:
        first = threading.Thread(target=post, args=("first",))
        first.start()
        deadline = time.monotonic() + 5
        while not IdempotencyRecord.objects.filter(key="twin").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        twin = threading.Thread(target=post, args=("twin",))
        twin.start()
        first.join(15)
        twin.join(15)
    finally:
        stripe_emulator.set_latency(0)

    assert answers["first"].status_code == 200, answers
    assert answers["twin"].status_code == 200, answers
    assert answers["twin"].json() == answers["first"].json()
    assert len(pi_creates(stripe_emulator)) == 1
    assert Payment.objects.count() == 1 and Booking.objects.count() == 1


@pytest.mark.emulator
def test_a_twin_waits_for_the_first_answer_and_replays_it(stripe_emulator, pay, student, monkeypatch):
    """The twin's wait, without threads: the first request answers while the twin polls."""
    from stripe_payments import idempotency

    body = {"gig_id": 1, "card_details": card(VISA)}
    record = IdempotencyRecord.objects.create(user=student, key="twin", scope="process-payment",
                                              request_hash=idempotency.request_hash(scope="process-payment", data=body))
    polls = []

    def first_request_answers_meanwhile(seconds):
        polls.append(seconds)
        if len(polls) == 3:
            IdempotencyRecord.objects.filter(pk=record.pk).update(
                in_flight=False, response_status=200, response_body={"success": True, "payment_id": 41})

    monkeypatch.setattr(idempotency.time, "sleep", first_request_answers_meanwhile)

    response = pay(VISA, gig_id=1, headers={"Idempotency-Key": "twin"})

    assert response.status_code == 200 and response.json() == {"success": True, "payment_id": 41}
    assert len(polls) == 3
    assert stripe_calls(stripe_emulator) == []


@pytest.mark.emulator
def test_a_twin_still_in_flight_after_the_wait_is_409_in_progress(stripe_emulator, pay, student, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.2
    from stripe_payments.idempotency import request_hash

    body = {"gig_id": 1, "card_details": card(VISA)}
    IdempotencyRecord.objects.create(user=student, key="held", scope="process-payment",
                                     request_hash=request_hash(scope="process-payment", data=body))

    response = pay(VISA, gig_id=1, headers={"Idempotency-Key": "held"})

    assert response.status_code == 409 and error_of(response)["code"] == "idempotency_in_progress"
    assert stripe_calls(stripe_emulator) == []


@pytest.mark.django_db
def test_the_handler_hears_whether_its_key_is_new(student):
    """A first attempt has nothing to resume; the retry after a 5xx (the key kept, answerless) does."""
    seen = []

    def failing(first):
        seen.append(first)
        raise ProviderTimeout()

    with pytest.raises(ProviderTimeout):
        run_idempotent(user=student, key="k", scope="s", data=BODY, handler=failing)
    run_idempotent(user=student, key="k", scope="s", data=BODY, handler=lambda first: seen.append(first) or Outcome(200, {}))
    run_idempotent(user=student, key=None, scope="s", data=BODY, handler=lambda first: seen.append(first) or Outcome(200, {}))

    assert seen == [True, False, False]
