"""In-process use: start the emulator on a free port in a daemon thread, for tests.

    handle = start_emulator()
    client = stripe.StripeClient("sk_test_x", base_addresses={"api": handle.base_url})
    ...
    handle.reset()   # between tests
    handle.stop()    # end of session

Everything here is also reachable over HTTP under /_emulator/ (see docs/STRIPE_EMULATOR.md);
webhook delivery options under POST /_emulator/webhooks/delivery.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from .emulator import Emulator
from .server import ServerThread
from .store import State
from .webhooks import DEFAULT_RETRY_COMPRESSION

# The deterministic defaults of ``EmulatorHandle.set_webhook_delivery``.
DELIVERY_DEFAULTS: dict = {
    "delay_ms": 0.0, "jitter": 0.5, "shuffle_window_ms": 0.0, "duplicate_rate": 0.0,
    "concurrency": 1, "seed": None, "retry_schedule": None,
    "retry_compression": DEFAULT_RETRY_COMPRESSION,
}


class EmulatorHandle:
    def __init__(self, server: ServerThread) -> None:
        self._server = server
        self.emulator: Emulator = server.emulator
        self.base_url: str = server.server.base_url

    @property
    def state(self) -> State:
        """The live state (objects by id under ``state.objects``); hold ``state.lock`` to read
        consistently while requests run."""
        return self.emulator.state

    @property
    def webhook_secret(self) -> str:
        return self.emulator.webhooks.secret

    # --- lifecycle -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget all objects, idempotency keys, faults, deliveries and logged requests;
        release any request held by a timeout fault. Webhook configuration and delivery options
        (``set_webhook_delivery``), latency and the search lag stay (they are settings, not
        state: a test that changes one sets it back, e.g. ``set_search_lag(0)`` in a fixture's
        teardown)."""
        self.emulator.reset()

    def stop(self) -> None:
        self._server.stop()

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Replace the clock (``time.time`` by default) used for ``created``, for the 24-hour
        idempotency expiry and for the search lag."""
        self.emulator.set_clock(clock)

    def set_latency(self, latency_ms: float) -> None:
        self.emulator.latency_ms = latency_ms

    def set_search_lag(self, ms: float) -> None:
        """Make ``/v1/*/search`` lag ``ms`` milliseconds behind, on the emulator's clock (see
        ``set_clock``), as Stripe's eventually consistent search does (about a minute): search
        leaves out objects created less than ``ms`` ago, and matches and returns every other
        object as it was ``ms`` ago (a status changed since is seen in its old value). Lists and
        retrieves are never lagged. 0 (the default) turns the lag off. Kept by ``reset()``.
        ValueError if negative."""
        self.emulator.set_search_lag(ms)

    @property
    def search_lag_ms(self) -> float:
        return self.emulator.search_lag_ms

    # --- request log ---------------------------------------------------------------------------

    def requests(self) -> list[dict]:
        """/v1 requests since the last reset or clear: {method, path, idempotency_key}."""
        return self.emulator.state.requests()

    def clear_requests(self) -> None:
        self.emulator.state.request_log.clear()

    # --- faults --------------------------------------------------------------------------------

    def arm_fault(self, method: str, path: str, kind: str, count: int = 1,
                  seconds: float = 30.0) -> None:
        """The next ``count`` requests matching ``method`` ("*" for any) and ``path`` (exact or
        prefix) get ``kind``, one of ``stripe_emulator.faults.KINDS``:

        - "timeout": held ``seconds`` without being executed, then the connection is closed;
        - "error_500": 500 ``api_error``, not executed, ``Stripe-Should-Retry: false``;
        - "rate_limit": 429 ``rate_limit``, not executed;
        - "lock_timeout": 429 ``lock_timeout``, not executed, ``Stripe-Should-Retry: true``;
        - "drop_after_work": executed (idempotent answer saved), then closed without an answer;
        - "reset_mid_body": executed, then half the answer sent and the connection reset;
        - "refused": not executed (the idempotency key stays unused), the connection reset at
          once with no answer: the SDK raises ``APIConnectionError`` immediately.

        ValueError for an unknown kind or a count below 1."""
        self.emulator.faults.arm(method, path, kind, count, seconds)

    def clear_faults(self) -> None:
        self.emulator.faults.clear()

    # --- webhooks ------------------------------------------------------------------------------

    def configure_webhooks(self, url: Optional[str], secret: Optional[str] = None, *,
                           max_attempts: Optional[int] = None, backoff: Optional[float] = None,
                           timeout: Optional[float] = None) -> None:
        """Deliver events to ``url`` (None turns deliveries off), signed with ``secret``.
        ``max_attempts`` in all, retry delays ``backoff`` × 1, 2, 4... seconds."""
        self.emulator.configure_webhooks(url, secret, max_attempts=max_attempts,
                                         backoff=backoff, timeout=timeout)

    def deliveries(self) -> list[dict]:
        """Every delivery: {id, event_id, event_type, url, status (pending / succeeded /
        failed), attempts, last_status_code, last_error, history}."""
        return self.emulator.webhooks.deliveries()

    def resend(self, delivery_id: str) -> Optional[dict]:
        return self.emulator.webhooks.resend(delivery_id)

    def wait_for_deliveries(self, timeout: float = 5.0) -> bool:
        """Wait until no delivery is queued or in flight (retries included)."""
        return self.emulator.webhooks.wait_idle(timeout)

    def wait_webhooks_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no delivery is delayed, held in a shuffle window, queued for a retry or in
        flight. False if that did not happen within ``timeout`` seconds."""
        return self.emulator.webhooks.wait_idle(timeout)

    def set_webhook_delivery(self, **options) -> dict:
        """How events are delivered, as Stripe documents they can be (late, out of order, twice,
        concurrently); options not given stay, and they are kept by ``reset()`` (set them back
        in teardown, e.g. ``set_webhook_delivery(**DELIVERY_DEFAULTS)``):

        - ``delay_ms``: each event waits that long (± ``jitter``, default 0.5, × that) first;
        - ``shuffle_window_ms``: events queued within a window go out in a random order;
        - ``duplicate_rate`` (0..1): the chance an event is delivered a second time;
        - ``concurrency``: deliveries in flight at once (default 1);
        - ``seed``: seeds the random choices, for reproducible runs;
        - ``retry_schedule`` (None: ``max_attempts`` / ``backoff``; "live" or "test": Stripe's)
          and ``retry_compression`` (Stripe's delays are divided by it, default 10 000).

        See ``stripe_emulator.webhooks``. ValueError for an unknown option or a bad value.
        Returns the settings."""
        unknown = set(options) - set(DELIVERY_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown webhook delivery option(s): {sorted(unknown)}")
        return self.emulator.webhooks.set_delivery(**options)

    @property
    def webhook_delivery(self) -> dict:
        return self.emulator.webhooks.delivery_settings()

    @property
    def webhook_max_in_flight(self) -> int:
        """The most deliveries in flight at once since the last reset."""
        return self.emulator.webhooks.max_in_flight

    def events(self, type_: Optional[str] = None) -> list[dict]:
        """Recorded events, oldest first."""
        st = self.emulator.state
        with st.lock:
            ids = st.lists["event"].ids
            return [st.objects[i] for i in ids
                    if type_ is None or st.objects[i]["type"] == type_]

    # --- triggers ------------------------------------------------------------------------------

    def trigger_dispute(self, charge_id: str, reason: str = "fraudulent") -> dict:
        """Open a dispute on a captured charge: ``charge.dispute.created``."""
        from . import api

        control = self._server.server.control
        dispute, events = control.act(
            lambda st, ctx: api.create_dispute(st, ctx, charge_id, reason))
        self.emulator.webhooks.enqueue(events)
        return dispute

    def fail_refund(self, refund_id: str) -> dict:
        """A succeeded refund fails: ``refund.updated`` with status failed."""
        from . import api

        control = self._server.server.control
        refund, events = control.act(lambda st, ctx: api.fail_refund(st, ctx, refund_id))
        self.emulator.webhooks.enqueue(events)
        return refund

    def complete_3ds(self, intent_id: str, succeed: bool = True) -> dict:
        """What the 3-D Secure page's Complete (or Fail) button does, without a browser.
        Returns the intent as it is afterwards. A decline after authentication leaves it in
        requires_payment_method; other errors raise StripeError."""
        control = self._server.server.control
        outcome = control.complete_3ds(intent_id, succeed)
        self.emulator.webhooks.enqueue(outcome["events"])
        if outcome["intent"] is None:
            raise outcome["error"]
        return outcome["intent"]

    def complete_onboarding(self, account_id: str) -> dict:
        """What finishing Connect onboarding does: charges and payouts enabled."""
        from . import api

        control = self._server.server.control
        acct, events = control.act(lambda st, ctx: api.complete_onboarding(st, ctx, account_id))
        self.emulator.webhooks.enqueue(events)
        return acct


    def _trigger(self, action) -> dict:
        obj, events = self._server.server.control.act(action)
        self.emulator.webhooks.enqueue(events)
        return obj

    def restrict_account(self, account_id: str) -> dict:
        """The connected account loses its capabilities (requirements past due)."""
        from . import api

        return self._trigger(lambda st, ctx: api.restrict_account(st, ctx, account_id))

    def release_funds(self, account_id: Optional[str] = None) -> dict:
        """Pending funds of the account (None: the platform) become available now; the
        balance afterwards."""
        from . import api

        return self._trigger(lambda st, ctx: api.release_funds(st, ctx, account_id))

    def settle_payout(self, payout_id: str, outcome: str = "paid",
                      failure_code: Optional[str] = None) -> dict:
        """The bank answers a payout: ``paid``, or ``failed`` (the funds come back)."""
        from . import api

        return self._trigger(lambda st, ctx: api.settle_payout(st, ctx, payout_id, outcome,
                                                               failure_code))

    def close_dispute(self, dispute_id: str, outcome: str) -> dict:
        """The network decides a dispute: ``won`` (funds reinstated) or ``lost``."""
        from . import api

        return self._trigger(lambda st, ctx: api.close_dispute(st, ctx, dispute_id, outcome))


def start_emulator(*, port: int = 0, webhook_url: Optional[str] = None,
                   webhook_secret: Optional[str] = None, latency_ms: float = 0,
                   webhook_backoff: float = 1.0, webhook_max_attempts: int = 4,
                   clock: Callable[[], float] = time.time,
                   search_lag_ms: float = 0, webhook_delivery: Optional[dict] = None,
                   ) -> EmulatorHandle:
    """Start an emulator on 127.0.0.1:``port`` (0: a free port) in a daemon thread.
    ``webhook_delivery``: options of ``EmulatorHandle.set_webhook_delivery``."""
    emulator = Emulator(webhook_url=webhook_url, webhook_secret=webhook_secret,
                        latency_ms=latency_ms, clock=clock, webhook_backoff=webhook_backoff,
                        webhook_max_attempts=webhook_max_attempts, search_lag_ms=search_lag_ms)
    if webhook_delivery:
        emulator.webhooks.set_delivery(**webhook_delivery)
    return EmulatorHandle(ServerThread(emulator, port).start())
