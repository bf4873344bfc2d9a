"""bench/locustfile.py, the load benchmark's flow, without a load run: every path it requests
resolves in the URL conf to a view that takes the step's method; the steps it runs exist; driven
through a fake client (no network) it runs the seed's flow in order, with a fresh Idempotency-Key
per payment and the saved card; and driven through Django's test client (the in-process emulator
as Stripe) every step gets the answer the locustfile expects. Skipped without locust
(requirements-bench.txt)."""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.urls import Resolver404, resolve


def _import_locust():
    # Locust monkey-patches the whole process with gevent on import; the test process needs its
    # real threads and sockets, and these tests run no load.
    prior = os.environ.get("LOCUST_SKIP_MONKEY_PATCH")
    os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
    try:
        return pytest.importorskip("locust")
    finally:
        if prior is None:
            os.environ.pop("LOCUST_SKIP_MONKEY_PATCH", None)
        else:
            os.environ["LOCUST_SKIP_MONKEY_PATCH"] = prior


locust = _import_locust()

from bench import locustfile  # noqa: E402  (after locust, which it imports)


# --- the task list against the URL conf ----------------------------------------------------------
@pytest.mark.parametrize("step", sorted(locustfile.PATHS))
def test_every_path_resolves_to_a_view_taking_its_method(step):
    method, path, expected = locustfile.PATHS[step]
    assert path.startswith("/") and path.endswith("/") and "?" not in path, path
    try:
        match = resolve(path)
    except Resolver404:
        pytest.fail(f"{step}: {path} does not resolve")
    view_class = getattr(match.func, "view_class", None) or getattr(match.func, "cls", None)
    assert view_class is not None, f"{step}: {path} is not a class-based view"
    assert method.lower() in view_class.http_method_names and hasattr(view_class, method.lower()), \
        f"{step}: {view_class.__name__} does not take {method}"
    assert expected in (200, 201), expected


def test_the_flow_is_made_of_known_steps():
    steps = set(locustfile.ON_START_REGISTER) | set(locustfile.ON_START_ACCOUNT) | set(locustfile.JOURNEY)
    assert steps <= set(locustfile.PATHS), steps - set(locustfile.PATHS)
    assert set(locustfile.PATHS) <= steps, "a path no step uses"
    for step in steps:
        assert callable(getattr(locustfile.Student, f"step_{step}", None)), step
    # The seed's order: an account and a token before anything else, a card before paying.
    assert locustfile.ON_START_REGISTER == ("register", *locustfile.ON_START_ACCOUNT)
    assert locustfile.ON_START_ACCOUNT[0] == "login" and "add_card" in locustfile.ON_START_ACCOUNT
    assert "pay" in locustfile.JOURNEY
    assert locustfile.ON_START in (locustfile.ON_START_REGISTER, locustfile.ON_START_ACCOUNT)
    names = [locustfile.request_name(step) for step in locustfile.PATHS]
    assert len(set(names)) == len(names)


def test_bench_load_creates_the_accounts_the_locustfile_logs_in_with():
    from bench import bench_load

    assert [bench_load.account_email(i) for i in (0, 7, 49)] == [locustfile.account_email(i) for i in (0, 7, 49)]
    assert bench_load.PAY_NAME == locustfile.request_name("pay")
    assert bench_load.LOCUSTFILE.resolve() == Path(locustfile.__file__).resolve()


def test_the_user_class_is_runnable():
    student = locustfile.Student
    assert issubclass(student, locust.HttpUser) and not student.abstract
    assert student.tasks, "no task"
    low, high = locustfile._wait_bounds()
    assert 0 <= low <= high
    assert low <= student.wait_time(object()) <= high


# --- the flow through a fake client ------------------------------------------------------------------
class _Response:
    def __init__(self, status: int, body):
        self.status_code = status
        self._body = body
        self.text = json.dumps(body)
        self.outcome = None

    def json(self):
        return self._body

    def success(self):
        self.outcome = "success"

    def failure(self, message):
        self.outcome = f"failure: {message}"


class _Client:
    """Records each request and answers through ``answer(method, path, body, params, headers)``."""

    def __init__(self, answer):
        self.answer = answer
        self.calls: list[dict] = []

    @contextmanager
    def request(self, method, path, *, name=None, json=None, params=None, headers=None, catch_response=False):
        assert catch_response, "every step checks its own answer"
        status, body = self.answer(method, path, json, params, headers or {})
        response = _Response(status, body)
        yield response
        self.calls.append({"method": method, "path": path, "name": name, "json": json, "params": params,
                           "headers": dict(headers or {}), "status": status, "outcome": response.outcome})


def _student(answer, monkeypatch=None, on_start=None):
    from locust.env import Environment

    # Locust's runner gives the class the --host; here a subclass carries it.
    student = type("Student", (locustfile.Student,), {"host": "http://testserver"})
    user = student(Environment(user_classes=[student], host="http://testserver"))
    user.client = _Client(answer)
    if on_start is not None:
        monkeypatch.setattr(locustfile, "ON_START", on_start)
    return user


def _canned(method, path, body, params, headers):
    if path == "/accounts/register/":
        return 201, {"id": 1, "email": body["email"], "role": "student"}
    if path == "/accounts/login/":
        return 200, {"access": "jwt-access", "refresh": "jwt-refresh", "user": {"id": 1, "role": "student"}}
    if path == "/gigs/":
        return 200, {"count": 2, "next": None, "previous": None,
                     "results": [{"id": 7, "is_active": True, "price_cents": 5000},
                                 {"id": 8, "is_active": False, "price_cents": 900}]}
    if path == "/stripe-payments/add-payment-method/":
        return 200, {"success": True, "payment_method_id": "pm_saved", "card_last4": "4242", "saved": True}
    if path == "/stripe-payments/process-payment/":
        return 200, {"success": True, "status": "succeeded", "payment_id": 3, "booking_id": 4}
    return 200, {"count": 0, "next": None, "previous": None, "results": []}


def test_the_flow_through_a_fake_client(monkeypatch):
    user = _student(_canned, monkeypatch, locustfile.ON_START_REGISTER)
    user.on_start()
    user.journey()
    user.journey()
    calls = user.client.calls
    steps = [next(s for s, (m, p, _) in locustfile.PATHS.items() if (m, p) == (c["method"], c["path"]))
             for c in calls]
    assert steps == list(locustfile.ON_START_REGISTER) + 2 * list(locustfile.JOURNEY)
    assert all(c["outcome"] == "success" for c in calls), calls
    assert all(c["name"] == f"{c['method']} {c['path']}" for c in calls)
    # No token before login, the login's token after it.
    assert "Authorization" not in calls[0]["headers"] and "Authorization" not in calls[1]["headers"]
    assert all(c["headers"]["Authorization"] == "Bearer jwt-access" for c in calls[2:])
    register, login = calls[0]["json"], calls[1]["json"]
    assert register["role"] == "student" and (login["email"], login["password"]) == (register["email"],
                                                                                     register["password"])
    add_card = next(c for c in calls if c["path"] == "/stripe-payments/add-payment-method/")
    assert add_card["json"]["card_number"] == "4242424242424242"
    payments = [c for c in calls if c["path"] == "/stripe-payments/process-payment/"]
    assert [p["json"] for p in payments] == [{"gig_id": 7, "saved_payment_method_id": "pm_saved"}] * 2
    keys = [p["headers"]["Idempotency-Key"] for p in payments]
    assert len(set(keys)) == 2 and all(uuid.UUID(key) for key in keys)


def test_an_account_made_beforehand_logs_in_without_registering(monkeypatch):
    monkeypatch.setenv("BENCH_LOAD_ACCOUNTS", "3")
    user = _student(_canned, monkeypatch, locustfile.ON_START_ACCOUNT)
    user.on_start()
    calls = user.client.calls
    assert [c["path"] for c in calls][:1] == ["/accounts/login/"]
    assert calls[0]["json"]["email"] in {locustfile.account_email(i) for i in range(3)}
    assert calls[0]["json"]["password"] == locustfile.PASSWORD


def test_a_wrong_answer_is_a_failure_and_ends_the_round():
    def declined(method, path, body, params, headers):
        if path == "/stripe-payments/process-payment/":
            return 402, {"success": False, "error": {"code": "card_declined", "message": "no"}}
        return _canned(method, path, body, params, headers)

    user = _student(declined)
    user.on_start()
    user.journey()
    last = user.client.calls[-1]
    assert last["path"] == "/stripe-payments/process-payment/"
    assert last["outcome"] == "failure: HTTP 402: card_declined"


def test_a_failed_login_stops_the_user(monkeypatch):
    def refused(method, path, body, params, headers):
        if path == "/accounts/login/":
            return 401, {"success": False, "error": {"code": "invalid_credentials", "message": "no"}}
        return _canned(method, path, body, params, headers)

    user = _student(refused, monkeypatch, locustfile.ON_START_REGISTER)
    with pytest.raises(locust.exception.StopUser):
        user.on_start()
    assert [c["path"] for c in user.client.calls] == ["/accounts/register/", "/accounts/login/"]


# --- the flow through Django's test client, the in-process emulator as Stripe ------------------------------
@pytest.mark.emulator
@pytest.mark.django_db
def test_the_flow_through_the_app(stripe_emulator, teacher, make_gig, monkeypatch):
    from rest_framework.test import APIClient

    make_gig(teacher, price_cents=3250)
    api = APIClient()

    def through_django(method, path, body, params, headers):
        url = path + (f"?{urlencode(params)}" if params else "")
        response = api.generic(method, url, json.dumps(body) if body is not None else "",
                               content_type="application/json", headers=headers)
        return response.status_code, response.json()

    user = _student(through_django, monkeypatch, locustfile.ON_START_REGISTER)
    user.on_start()
    user.journey()
    calls = user.client.calls
    assert [c["outcome"] for c in calls] == ["success"] * len(calls), \
        [(c["path"], c["status"], c["outcome"]) for c in calls]
    assert len(calls) == len(locustfile.ON_START_REGISTER) + len(locustfile.JOURNEY)

    from stripe_payments.models import Payment

    payment = Payment.objects.get()
    assert (payment.status, payment.amount_cents, payment.student.email) == ("succeeded", 3250, user.email)
