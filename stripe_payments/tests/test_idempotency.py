"""The Idempotency-Key store at unit level: keyed hashes, replay, release after a 5xx, expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from linguaflex.errors import DomainError
from stripe_payments import idempotency
from stripe_payments.gateway import ProviderTimeout
from stripe_payments.idempotency import IdempotencyConflict, Outcome, purge_expired, request_hash, run_idempotent
from stripe_payments.models import IdempotencyRecord

from .conftest import VISA, card

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
                   handler=lambda: Outcome(200, {"success": True}))

    record = IdempotencyRecord.objects.get()
    assert record.request_hash == request_hash(scope="process-payment", data=BODY)
    assert (record.response_status, record.response_body, record.in_flight) == (200, {"success": True}, False)
    assert VISA not in str(IdempotencyRecord.objects.values().get())


@pytest.mark.django_db
def test_same_key_runs_the_handler_once_and_replays(student):
    calls = []

    def handler():
        calls.append(1)
        return Outcome(200, {"n": len(calls)})

    first = run_idempotent(user=student, key="k", scope="s", data=BODY, handler=handler)
    second = run_idempotent(user=student, key="k", scope="s", data=BODY, handler=handler)

    assert (first.status, first.body) == (second.status, second.body) == (200, {"n": 1})
    assert len(calls) == 1


@pytest.mark.django_db
def test_same_key_with_another_body_or_scope_conflicts(student):
    run_idempotent(user=student, key="k", scope="s", data=BODY, handler=lambda: Outcome(200, {}))

    with pytest.raises(IdempotencyConflict):
        run_idempotent(user=student, key="k", scope="s", data={**BODY, "gig_id": 2}, handler=lambda: Outcome(200, {}))
    with pytest.raises(IdempotencyConflict):
        run_idempotent(user=student, key="k", scope="other", data=BODY, handler=lambda: Outcome(200, {}))


@pytest.mark.django_db
def test_a_4xx_domain_error_is_stored_and_replayed(student):
    calls = []

    def handler():
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
    the first attempt left by the same key (test_apis.py: test_a_5xx_is_not_stored_and_the_retry_resumes_the_same_payment)."""
    calls = []

    def failing():
        calls.append("failed")
        raise ProviderTimeout()

    with pytest.raises(ProviderTimeout):
        run_idempotent(user=student, key="k", scope="s", data=BODY, handler=failing)
    record = IdempotencyRecord.objects.get()
    assert record.response_status is None and record.in_flight is False

    outcome = run_idempotent(user=student, key="k", scope="s", data=BODY,
                             handler=lambda: calls.append("retried") or Outcome(200, {"ok": 1}))

    assert outcome.status == 200 and calls == ["failed", "retried"]
    assert IdempotencyRecord.objects.get().response_status == 200


@pytest.mark.django_db
def test_an_integrity_error_inside_the_handler_is_raised_not_taken_for_a_twin(student):
    calls = []

    def handler():
        calls.append(1)
        raise IntegrityError("a constraint of the handler's own write")

    with pytest.raises(IntegrityError):
        run_idempotent(user=student, key="k", scope="s", data=BODY, handler=handler)
    assert len(calls) == 1


@pytest.mark.django_db
def test_without_a_key_nothing_is_stored(student):
    outcome = run_idempotent(user=student, key=None, scope="s", data=BODY, handler=lambda: Outcome(200, {}))

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
