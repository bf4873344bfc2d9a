"""GET /metrics/: who may read it, what it exposes, and the recorders that feed it."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import override_settings
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from linguaflex import metrics

pytestmark = pytest.mark.django_db

URL = "/metrics/"


def _value(name: str, labels: dict | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def _scrape(client, **extra) -> dict[str, list]:
    """The exposition as {sample name: [(labels, value), ...]}."""
    response = client.get(URL, **extra)
    assert response.status_code == 200, response.content
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _assert_denied(response):
    assert response.status_code == 403
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "permission_denied"
    assert body["error"]["request_id"] == response["X-Request-ID"]


# --- who may read it ------------------------------------------------------------------------------------
@override_settings(METRICS_TOKEN="")
def test_a_remote_client_is_refused(api_client):
    _assert_denied(api_client.get(URL, REMOTE_ADDR="10.0.0.5"))


@override_settings(METRICS_TOKEN="")
def test_a_proxied_loopback_request_is_refused(api_client):
    _assert_denied(api_client.get(URL, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9"))


@override_settings(METRICS_TOKEN="")
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_loopback_reads_the_prometheus_exposition_without_a_token(api_client, address):
    response = api_client.get(URL, REMOTE_ADDR=address)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "version=" in response["Content-Type"]
    text = response.content.decode()
    assert "# TYPE linguaflex_http_request_duration_seconds histogram" in text
    assert "# TYPE linguaflex_payments_total counter" in text


@override_settings(METRICS_TOKEN="s3cret")
def test_with_a_token_only_the_bearer_token_reads_it(api_client):
    assert api_client.get(URL, REMOTE_ADDR="10.0.0.5", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
    assert api_client.get(URL, REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION="Bearer s3cret",
                          HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 200


@override_settings(METRICS_TOKEN="s3cret")
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Bearer s3cret2", "bearer s3cret", "s3cret",
                                           "Basic czNjcmV0"])
def test_with_a_token_anything_else_is_refused_even_from_loopback(api_client, authorization):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    _assert_denied(api_client.get(URL, REMOTE_ADDR="127.0.0.1", **extra))


@override_settings(METRICS_TOKEN="")
def test_post_is_refused_with_405(api_client):
    response = api_client.post(URL, {}, format="json")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


# --- request timing -----------------------------------------------------------------------------------
@override_settings(METRICS_TOKEN="")
def test_a_request_is_timed_under_its_route_pattern(api_client):
    labels = {"method": "GET", "route": "health/", "status": "200"}
    before = _value("linguaflex_http_request_duration_seconds_count", labels)

    assert api_client.get("/health/").status_code == 200

    assert _value("linguaflex_http_request_duration_seconds_count", labels) == before + 1
    samples = _scrape(api_client)
    counts = [value for sample_labels, value in samples["linguaflex_http_request_duration_seconds_count"]
              if sample_labels == labels]
    assert counts == [before + 1]


@override_settings(METRICS_TOKEN="")
def test_an_unknown_path_is_labelled_unmatched_never_by_its_raw_path(api_client):
    labels = {"method": "GET", "route": "unmatched", "status": "404"}
    before = _value("linguaflex_http_request_duration_seconds_count", labels)

    assert api_client.get("/no/such/path-7f3a9/").status_code == 404

    assert _value("linguaflex_http_request_duration_seconds_count", labels) == before + 1
    text = api_client.get(URL).content.decode()
    assert "path-7f3a9" not in text


def test_a_route_with_a_parameter_is_labelled_by_its_pattern(client_for, student):
    client = client_for(student)
    client.get("/stripe-payments/payments/987654/")

    routes = {labels["route"] for _, labels, _ in _samples_of("linguaflex_http_request_duration_seconds_count")}
    assert not any("987654" in route for route in routes)
    assert any("<" in route and route.startswith("stripe-payments/payments/") for route in routes)


def _samples_of(name: str):
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == name:
                yield sample.name, sample.labels, sample.value


# --- the recorders ------------------------------------------------------------------------------------
def test_payment_outcome_counts_by_outcome_and_decline_code():
    labels = {"outcome": "failed", "decline_code": "insufficient_funds"}
    before = _value("linguaflex_payments_total", labels)

    assert metrics.payment_outcome("failed", "insufficient_funds") is None

    assert _value("linguaflex_payments_total", labels) == before + 1


def test_payment_outcome_without_a_decline_code_gets_a_blank_label():
    labels = {"outcome": "succeeded", "decline_code": ""}
    before = _value("linguaflex_payments_total", labels)

    metrics.payment_outcome("succeeded")

    assert _value("linguaflex_payments_total", labels) == before + 1


def test_a_long_label_is_cut_to_keep_the_label_set_bounded():
    long_code = "x" * 200
    metrics.payment_outcome("failed", long_code)

    assert _value("linguaflex_payments_total", {"outcome": "failed", "decline_code": "x" * metrics.LABEL_MAX}) >= 1
    assert REGISTRY.get_sample_value("linguaflex_payments_total", {"outcome": "failed", "decline_code": long_code}) \
        is None


def test_stripe_call_times_every_try_and_counts_errors():
    ok_before = _value("linguaflex_stripe_call_duration_seconds_count", {"operation": "test_op"})
    err_labels = {"operation": "test_op", "error": "APIConnectionError"}
    err_before = _value("linguaflex_stripe_call_errors_total", err_labels)

    metrics.stripe_call("test_op", 0.2)
    metrics.stripe_call("test_op", 0.3, error="APIConnectionError")

    assert _value("linguaflex_stripe_call_duration_seconds_count", {"operation": "test_op"}) == ok_before + 2
    assert _value("linguaflex_stripe_call_errors_total", err_labels) == err_before + 1


def test_webhook_applied_counts_and_observes_the_lag():
    event_type = "test.lag_probe"
    count_before = _value("linguaflex_webhook_lag_seconds_count", {"type": event_type})
    sum_before = _value("linguaflex_webhook_lag_seconds_sum", {"type": event_type})
    handled_before = _value("linguaflex_webhook_events_total", {"type": event_type, "outcome": "processed"})

    metrics.webhook_applied(event_type, 3.5, "processed")
    metrics.webhook_applied(event_type, None, "processed")  # no Stripe timestamp: counted, no lag

    assert _value("linguaflex_webhook_events_total", {"type": event_type, "outcome": "processed"}) == handled_before + 2
    assert _value("linguaflex_webhook_lag_seconds_count", {"type": event_type}) == count_before + 1
    assert _value("linguaflex_webhook_lag_seconds_sum", {"type": event_type}) == pytest.approx(sum_before + 3.5)
    assert _value("linguaflex_webhook_lag_seconds_bucket", {"type": event_type, "le": "5.0"}) >= 1


def test_task_finished_counts_by_task_and_state():
    labels = {"task": "test.task_probe", "state": "retried"}
    before = _value("linguaflex_celery_tasks_total", labels)

    metrics.task_finished("test.task_probe", "retried")

    assert _value("linguaflex_celery_tasks_total", labels) == before + 1


@override_settings(METRICS_TOKEN="")
def test_the_ledger_checks_result_is_scraped_from_the_cache(api_client):
    assert "linguaflex_ledger_check_ok" not in _scrape(api_client)  # never ran: absent, not "ok"

    metrics.ledger_checked(False, 3)

    samples = _scrape(api_client)
    assert samples["linguaflex_ledger_check_ok"] == [({}, 0.0)]
    assert samples["linguaflex_ledger_check_problems"] == [({}, 3.0)]
    assert samples["linguaflex_ledger_check_timestamp_seconds"][0][1] > 0

    metrics.ledger_checked(True, 0)

    samples = _scrape(api_client)
    assert samples["linguaflex_ledger_check_ok"] == [({}, 1.0)]
    assert samples["linguaflex_ledger_check_problems"] == [({}, 0.0)]


@override_settings(METRICS_TOKEN="")
def test_the_scrape_counts_unapplied_webhook_events(api_client):
    from stripe_payments.models import WebhookEvent

    samples = _scrape(api_client)
    assert samples["linguaflex_webhook_events_unapplied"] == [({}, 0.0)]
    assert samples["linguaflex_webhook_oldest_unapplied_age_seconds"] == [({}, 0.0)]

    for n, status in enumerate(["received", "failed", "received", "processed", "ignored"]):
        WebhookEvent.objects.create(stripe_event_id=f"evt_metrics_{n}", type="payment_intent.succeeded", status=status)

    samples = _scrape(api_client)
    assert samples["linguaflex_webhook_events_unapplied"] == [({}, 3.0)]
    assert samples["linguaflex_webhook_oldest_unapplied_age_seconds"][0][1] >= 0.0


@override_settings(METRICS_TOKEN="", METRICS_SCRAPE_COLLECTORS=["no.such.Collector",
                                                                "stripe_payments.metrics.WebhookBacklogCollector"])
def test_a_failing_scrape_collector_does_not_hide_the_others(api_client):
    assert _scrape(api_client)["linguaflex_webhook_events_unapplied"] == [({}, 0.0)]


def test_a_recorder_that_fails_never_raises(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("registry broken")

    monkeypatch.setattr(metrics.PAYMENTS, "labels", broken)
    monkeypatch.setattr(metrics.STRIPE_ERRORS, "labels", broken)
    monkeypatch.setattr(metrics.WEBHOOKS, "labels", broken)
    monkeypatch.setattr(metrics.TASKS, "labels", broken)
    monkeypatch.setattr(metrics.cache, "set", broken)

    assert metrics.payment_outcome("failed", "insufficient_funds") is None
    assert metrics.stripe_call("op", 0.1, error="boom") is None
    assert metrics.webhook_applied("t", 1.0, "processed") is None
    assert metrics.task_finished("t", "failed") is None
    assert metrics.ledger_checked(False, 1) is None


# --- counted only once committed ------------------------------------------------------------------------
def _processing_payment(student, gig, decline_code: str):
    from stripe_payments.models import Payment
    from stripe_payments.money import split_amount

    split = split_amount(gig.price_cents)
    return Payment.objects.create(
        student=student, teacher=gig.teacher, gig=gig, amount_cents=gig.price_cents,
        admin_fee_cents=split.admin_fee_cents, teacher_amount_cents=split.teacher_amount_cents,
        decline_code=decline_code,
    )


@pytest.mark.django_db(transaction=True)
def test_a_move_that_rolls_back_is_not_counted_and_one_that_commits_is(student, gig):
    from stripe_payments.models import PaymentStatus
    from stripe_payments.services import lifecycle

    rolled_back = {"outcome": "succeeded", "decline_code": "test_rollback_probe"}
    committed = {"outcome": "succeeded", "decline_code": "test_commit_probe"}
    rolled_back_before = _value("linguaflex_payments_total", rolled_back)
    committed_before = _value("linguaflex_payments_total", committed)

    payment = _processing_payment(student, gig, "test_rollback_probe")
    assert payment.status == PaymentStatus.PROCESSING

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        lifecycle._move(payment, PaymentStatus.SUCCEEDED)
        payment.save(update_fields=["status"])
        raise Abort

    assert _value("linguaflex_payments_total", rolled_back) == rolled_back_before
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PROCESSING

    other = _processing_payment(student, gig, "test_commit_probe")
    with transaction.atomic():
        lifecycle._move(other, PaymentStatus.SUCCEEDED)
        other.save(update_fields=["status"])
        assert _value("linguaflex_payments_total", committed) == committed_before  # not before the commit

    assert _value("linguaflex_payments_total", committed) == committed_before + 1
