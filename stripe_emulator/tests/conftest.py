"""One emulator per test session, reset before each test. Plain pytest: no Django needed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import stripe

from stripe_emulator.testing import start_emulator

from .helpers import Receiver, make_client

# Stripe's example objects, a copy kept in the repository (see stripe_emulator/data/README.md).
FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures3.json"


@pytest.fixture(scope="session")
def emulator():
    handle = start_emulator(webhook_backoff=0.05)
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _fresh(emulator):
    emulator.reset()
    yield
    emulator.configure_webhooks(None, max_attempts=4, backoff=0.05)
    emulator.set_clock(time.time)
    emulator.set_latency(0)
    emulator.set_search_lag(0)
    emulator.reset()


@pytest.fixture(autouse=True)
def _clear_cache():
    """The project's pytest plugin (linguaflex.testing.fixtures) clears Django's cache around
    every test; these tests use no Django, and must run even with ``-p no:django``."""
    yield


@pytest.fixture
def client(emulator) -> stripe.StripeClient:
    return make_client(emulator)


@pytest.fixture
def fixtures3():
    return json.loads(FIXTURES.read_text())["resources"]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()
