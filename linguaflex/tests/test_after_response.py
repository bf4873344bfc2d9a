"""linguaflex/after_response.py: work deferred until the response has gone out."""

from __future__ import annotations

import logging

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from linguaflex import request_id
from linguaflex.after_response import AfterResponseMiddleware, after_response
from linguaflex.request_id import RequestIdMiddleware

# Closing a response sends request_finished, which closes old database connections.
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def deferred(settings):
    settings.DEFER_AFTER_RESPONSE = True


def test_with_deferral_off_the_work_runs_at_once_even_inside_a_request(settings):
    settings.DEFER_AFTER_RESPONSE = False
    ran = []

    def view(request):
        after_response(lambda: ran.append(1))
        assert ran == [1]
        return HttpResponse("ok")

    _served(view).close()
    assert ran == [1]


def _served(view):
    """RequestIdMiddleware around AfterResponseMiddleware around ``view``, as in MIDDLEWARE."""
    return RequestIdMiddleware(AfterResponseMiddleware(view))(RequestFactory().get("/"))


def test_outside_a_request_the_work_runs_at_once():
    ran = []

    after_response(lambda: ran.append(1))

    assert ran == [1]


def test_inside_a_request_the_work_waits_for_the_response_to_close_and_keeps_the_request_id():
    ran = []

    def view(request):
        after_response(lambda: ran.append(("first", request_id.get())))
        after_response(lambda: ran.append(("second", request_id.get())))
        return HttpResponse("ok")

    response = _served(view)

    assert ran == []
    response.close()
    assert ran == [("first", response["X-Request-ID"]), ("second", response["X-Request-ID"])]
    assert request_id.get() is None


def test_a_failing_piece_of_work_is_logged_and_the_rest_still_runs(caplog):
    ran = []

    def view(request):
        after_response(lambda: 1 / 0)
        after_response(lambda: ran.append("after"))
        return HttpResponse("ok")

    response = _served(view)
    with caplog.at_level(logging.ERROR, logger="linguaflex.after_response"):
        response.close()

    assert ran == ["after"]
    assert "work after the response failed" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_an_email_is_sent_after_the_response(mailoutbox, settings):
    from linguaflex import mail
    from linguaflex.tests.test_mail_outbox import RENDER_TWO

    assert settings.CELERY_TASK_ALWAYS_EAGER

    def view(request):
        from django.db import transaction

        with transaction.atomic():
            mail.email_after_commit(RENDER_TWO, 31)
        assert mailoutbox == []  # committed, not yet sent: the answer goes first
        return HttpResponse("ok")

    response = _served(view)

    assert mailoutbox == []
    response.close()
    assert len(mailoutbox) == 2


@pytest.mark.django_db(transaction=True)
def test_with_a_broker_the_email_task_is_published_after_the_response(monkeypatch):
    """The broker's round trip is not the client's to wait for either; the row is committed first."""
    from linguaflex import mail, tasks
    from linguaflex.models import OutboundEmail
    from linguaflex.tests.test_mail_outbox import RENDER_TWO

    published = []
    monkeypatch.setattr(tasks.send_email, "delay", lambda email_id: published.append(email_id))

    def view(request):
        from django.db import transaction

        with transaction.atomic():
            mail.email_after_commit(RENDER_TWO, 32)
        return HttpResponse("ok")

    response = _served(view)

    assert published == [] and OutboundEmail.objects.filter(object_id=32).exists()
    response.close()
    assert published == [OutboundEmail.objects.get(object_id=32).pk]
