"""Locust: the seed's payment flow, as simulated students (bench/bench_load.py runs it headless).

    locust -f bench/locustfile.py --headless -u 50 -r 10 --run-time 60s --host http://127.0.0.1:PORT

Each simulated student, once (``ON_START``): registers with a fresh e-mail (or, with
``BENCH_LOAD_ACCOUNTS=N``, takes one of N accounts created beforehand, ``account_email(i)``), logs
in with e-mail and password for a JWT, lists the gigs and saves the test card 4242 4242 4242 4242.
Then, over and over (``JOURNEY``, one round a task, ``wait_time`` between rounds): lists the gigs,
pays for a random one with the saved card (process-payment with a fresh ``Idempotency-Key`` per
payment), lists its payments and its bookings. Teachers and gigs must exist beforehand
(bench_load.py creates them, and the accounts).

Every request is named ``METHOD path`` from ``PATHS`` (the query string left out), so the statistics
have one row a step; any answer other than the step's expected status (and shape) is a failure.

Environment: ``BENCH_LOAD_ACCOUNTS`` (see above; 0 or unset: register), ``BENCH_LOAD_WAIT`` =
"min,max" seconds between rounds (default "0.1,0.5"), ``BENCH_LOAD_PASSWORD`` (default a fixed,
validator-proof password), ``BENCH_LOAD_FINAL_CSV`` = a path prefix: at the end (the ``quitting``
event, all users stopped) the final statistics go to ``<prefix>_stats.csv``,
``<prefix>_failures.csv`` and ``<prefix>_exceptions.csv``. Locust's own ``--csv`` files are
rewritten once a second while it runs and may miss the last second's requests.
"""

from __future__ import annotations

import csv
import itertools
import os
import random
import time
import uuid

from locust import HttpUser, between, events, task
from locust.exception import StopUser
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

# step -> (method, path, expected status). The tests resolve every path against the URL conf.
PATHS: dict[str, tuple[str, str, int]] = {
    "register": ("POST", "/accounts/register/", 201),
    "login": ("POST", "/accounts/login/", 200),
    "gigs": ("GET", "/gigs/", 200),
    "add_card": ("POST", "/stripe-payments/add-payment-method/", 200),
    "pay": ("POST", "/stripe-payments/process-payment/", 200),
    "payments": ("GET", "/stripe-payments/payments/", 200),
    "bookings": ("GET", "/bookings/", 200),
}
ON_START_REGISTER = ("register", "login", "gigs", "add_card")
ON_START_ACCOUNT = ("login", "gigs", "add_card")  # an account created beforehand
JOURNEY = ("gigs", "pay", "payments", "bookings")

CARD_NUMBER = "4242424242424242"
PASSWORD = os.environ.get("BENCH_LOAD_PASSWORD", "Load-bench-pw-7391")
EMAIL_DOMAIN = "load.linguaflex.test"


def accounts() -> int:
    """How many accounts were created beforehand (BENCH_LOAD_ACCOUNTS); 0: the students register."""
    return int(os.environ.get("BENCH_LOAD_ACCOUNTS") or 0)


def account_email(index: int) -> str:
    """The e-mail of the account created beforehand number ``index`` (its password: PASSWORD)."""
    return f"load-student-{index}@{EMAIL_DOMAIN}"


ON_START = ON_START_ACCOUNT if accounts() else ON_START_REGISTER
_next_account = itertools.count()


def _wait_bounds() -> tuple[float, float]:
    raw = os.environ.get("BENCH_LOAD_WAIT", "0.1,0.5")
    low, _, high = raw.partition(",")
    low_s = float(low)
    return low_s, float(high or low_s)


def request_name(step: str) -> str:
    method, path, _ = PATHS[step]
    return f"{method} {path}"


def card_details() -> dict:
    return {"card_number": CARD_NUMBER, "exp_month": 12, "exp_year": time.gmtime().tm_year + 3,
            "cvc": "123", "cardholder_name": "Load Student"}


class Student(HttpUser):
    """One simulated student."""

    wait_time = between(*_wait_bounds())

    def on_start(self) -> None:
        self.token = ""
        self.gigs: list[dict] = []
        self.payment_method_id = ""
        if accounts():
            self.email = account_email(next(_next_account) % accounts())
        else:
            self.email = f"student-{uuid.uuid4().hex[:16]}@{EMAIL_DOMAIN}"
        for step in ON_START:
            if getattr(self, f"step_{step}")() is None:
                raise StopUser()  # the failure is recorded; without it the journey cannot go on

    @task
    def journey(self) -> None:
        for step in JOURNEY:
            if getattr(self, f"step_{step}")() is None:
                return  # the failure is recorded; the next round starts over

    # --- HTTP -----------------------------------------------------------------------------------
    def call(self, step: str, *, json: dict | None = None, params: dict | None = None,
             headers: dict | None = None, check=None) -> dict | None:
        """One request of ``step``: its JSON body, or None (after recording a failure) when the
        status is not the step's expected one, the body is not a JSON object or ``check(body)``
        answers a complaint (a string)."""
        method, path, expected = PATHS[step]
        all_headers = {"Accept": "application/json"}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        all_headers.update(headers or {})
        with self.client.request(method, path, name=request_name(step), json=json, params=params,
                                 headers=all_headers, catch_response=True) as response:
            if response.status_code != expected:
                response.failure(f"HTTP {response.status_code}: {_code(response)}")
                return None
            try:
                body = response.json()
            except ValueError:
                response.failure(f"HTTP {response.status_code}, not JSON")
                return None
            complaint = "not a JSON object" if not isinstance(body, dict) else (check(body) if check else None)
            if complaint:
                response.failure(complaint)
                return None
            response.success()
            return body

    # --- the steps: each returns something (truthy or not) on success, None on failure ---------------
    def step_register(self):
        return self.call("register", json={"email": self.email, "password": PASSWORD, "first_name": "Load",
                                           "last_name": "Student", "role": "student"})

    def step_login(self):
        body = self.call("login", json={"email": self.email, "password": PASSWORD},
                         check=lambda b: None if b.get("access") else "no access token")
        if body is None:
            return None
        self.token = body["access"]
        return body

    def step_gigs(self):
        body = self.call("gigs", params={"page_size": 100},
                         check=lambda b: None if _active(b) else "no active gig (create teachers and gigs first)")
        if body is None:
            return None
        gigs = self.gigs = _active(body)
        return gigs

    def step_add_card(self):
        body = self.call("add_card", json={**card_details(), "save_for_future": True},
                         headers={"Idempotency-Key": str(uuid.uuid4())},
                         check=lambda b: None if str(b.get("payment_method_id", "")).startswith("pm_")
                         else f"no payment_method_id: {str(b)[:120]}")
        if body is None:
            return None
        self.payment_method_id = body["payment_method_id"]
        return body

    def step_pay(self):
        gig = random.choice(self.gigs)
        body = self.call("pay", json={"gig_id": gig["id"], "saved_payment_method_id": self.payment_method_id},
                         headers={"Idempotency-Key": str(uuid.uuid4())}, check=_paid)
        return body

    def step_payments(self):
        return self.call("payments")

    def step_bookings(self):
        return self.call("bookings")


def _active(body: dict) -> list[dict]:
    return [gig for gig in body.get("results") or [] if gig.get("is_active", True)]


def _paid(body: dict) -> str | None:
    if body.get("status") == "succeeded" and body.get("booking_id"):
        return None
    return f"status {body.get('status')!r}, booking {body.get('booking_id')!r}"


def _code(response) -> str:
    """The error envelope's code, else the start of the body."""
    try:
        error = response.json().get("error") or {}
        return str(error.get("code") or "")
    except (ValueError, AttributeError):
        return (response.text or "")[:80]


@events.quitting.add_listener
def write_final_csv(environment, **_kwargs) -> None:
    """The complete statistics, once every user has stopped (see BENCH_LOAD_FINAL_CSV above)."""
    prefix = os.environ.get("BENCH_LOAD_FINAL_CSV")
    if not prefix:
        return
    writer = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for suffix, write in (("stats", writer.requests_csv), ("failures", writer.failures_csv),
                          ("exceptions", writer.exceptions_csv)):
        with open(f"{prefix}_{suffix}.csv", "w", newline="") as fh:
            write(csv.writer(fh))
