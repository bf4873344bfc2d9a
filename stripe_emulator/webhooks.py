"""Webhook deliveries: each event is POSTed, signed, after the API call that caused it answered.

The signature is Stripe's: ``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" under the endpoint secret>``, which ``stripe.Webhook.construct_event`` verifies. It is
computed at each attempt, so a retry or a duplicate carries a fresh timestamp.

Delivery is a queue served by a scheduler thread, which starts each due attempt on a short-lived
sender thread, at most ``concurrency`` in flight at once. Stripe documents that events can arrive
late, out of order, more than once and concurrently (https://docs.stripe.com/webhooks: "Stripe
doesn't guarantee the delivery of events in the order that they're generated", "Webhook endpoints
might occasionally receive the same event more than once"); :meth:`Dispatcher.set_delivery`
emulates each:

- ``delay_ms``: each event waits that long (± ``jitter`` × that, uniformly) before its first try;
- ``shuffle_window_ms``: events queued within a window (opened by the first event queued while no
  window is open) are released together when it closes, in a random order;
- ``duplicate_rate`` (0..1): the chance that an event is delivered a second time (same event id,
  same body, new signature timestamp), as its own delivery (``duplicate: True``) with its own delay;
- ``concurrency``: how many deliveries may be in flight at once;
- ``seed``: seeds the random choices (jitter, shuffle order, duplicates), so a run is reproducible
  (the order within a window is; which events share a window depends on timing);
- ``retry_schedule`` / ``retry_compression``: see below.

The defaults are deterministic and are the behaviour before these options existed: no delay, no
shuffle, no duplicates, one delivery at a time, in the order the events became due. Stripe's real
delivery is not like that, but the app's tests rely on determinism; turn the options on to test
against Stripe's documented guarantees instead.

Retries: a non-2xx answer, a connection error or a timeout (``timeout`` seconds) is retried. With
``retry_schedule=None`` (the default) there are ``max_attempts`` attempts in all, after
``backoff``, 2×``backoff``, 4×... seconds. ``retry_schedule="live"`` or ``"test"`` follows Stripe's
schedule divided by ``retry_compression`` (default 10 000: a minute becomes 6 ms). Stripe's docs
(https://docs.stripe.com/webhooks, "Retry behavior") say: in live mode Stripe retries "for up to
three days with an exponential back off"; in a sandbox, "three times over a few hours". They do
not publish the individual intervals, so the emulator's are an approximation with those bounds:

- ``live``: 12 retries, 1 minute then doubling (1, 2, 4 ... 2048 minutes): the last attempt about
  2.8 days after the first (``STRIPE_RETRY_DELAYS["live"]``);
- ``test``: 3 retries, after 15 minutes, 1 hour and 2 hours: the last about 3 h 15 min after the
  first (``STRIPE_RETRY_DELAYS["test"]``).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import random
import threading
import time
import urllib.error
import urllib.request
from typing import Optional

from .objects import new_id

DEFAULT_SECRET = "whsec_stripe_emulator_local_secret"

# Seconds between an attempt and the next, for Stripe's schedules (see the module docstring).
STRIPE_RETRY_DELAYS: dict[str, tuple[float, ...]] = {
    "live": tuple(60.0 * 2 ** k for k in range(12)),
    "test": (15 * 60.0, 60 * 60.0, 2 * 60 * 60.0),
}
DEFAULT_RETRY_COMPRESSION = 10_000.0

# No proxies from the environment: deliveries go straight to the configured URL.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sign(payload: bytes, secret: str, timestamp: Optional[int] = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


_UNSET = object()


class Dispatcher:
    def __init__(self, url: Optional[str] = None, secret: Optional[str] = None, *,
                 max_attempts: int = 4, backoff: float = 1.0, timeout: float = 10.0) -> None:
        self.url = url
        self.secret = secret or DEFAULT_SECRET
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.timeout = timeout
        # delivery behaviour (set_delivery): the defaults are deterministic
        self.delay_ms = 0.0
        self.jitter = 0.5
        self.shuffle_window_ms = 0.0
        self.duplicate_rate = 0.0
        self.concurrency = 1
        self.seed: Optional[int] = None
        self.retry_schedule: Optional[str] = None
        self.retry_compression = DEFAULT_RETRY_COMPRESSION
        self._rng = random.Random()
        self._cond = threading.Condition()
        self._queue: list = []  # heap of (due, seq, delivery)
        self._window: list = []  # deliveries waiting for the shuffle window to close
        self._window_closes: Optional[float] = None
        self._seq = itertools.count()
        self._deliveries: dict[str, dict] = {}
        self._events: dict[str, bytes] = {}
        self._generation = 0
        self._busy = 0
        self._max_busy = 0
        self._announced = 0  # events answered over HTTP whose deliveries are not queued yet
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="stripe-emulator-webhooks",
                                        daemon=True)
        self._thread.start()

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def configure(self, url: Optional[str], secret: Optional[str] = None, *,
                  max_attempts: Optional[int] = None, backoff: Optional[float] = None,
                  timeout: Optional[float] = None) -> None:
        with self._cond:
            self.url = url or None
            if secret:
                self.secret = secret
            if max_attempts is not None:
                self.max_attempts = max(1, int(max_attempts))
            if backoff is not None:
                self.backoff = float(backoff)
            if timeout is not None:
                self.timeout = float(timeout)

    def set_delivery(self, *, delay_ms=_UNSET, jitter=_UNSET, shuffle_window_ms=_UNSET,
                     duplicate_rate=_UNSET, concurrency=_UNSET, seed=_UNSET,
                     retry_schedule=_UNSET, retry_compression=_UNSET) -> dict:
        """Change how events are delivered (see the module docstring); options not given stay.
        ``seed`` (an int, or None for an unseeded generator) restarts the random generator.
        ValueError for a value out of range (nothing is changed then). Returns the settings."""
        values = {}
        if delay_ms is not _UNSET:
            values["delay_ms"] = _at_least(float(delay_ms), 0.0, "delay_ms")
        if jitter is not _UNSET:
            values["jitter"] = _between(float(jitter), "jitter")
        if shuffle_window_ms is not _UNSET:
            values["shuffle_window_ms"] = _at_least(float(shuffle_window_ms), 0.0,
                                                    "shuffle_window_ms")
        if duplicate_rate is not _UNSET:
            values["duplicate_rate"] = _between(float(duplicate_rate), "duplicate_rate")
        if concurrency is not _UNSET:
            if float(concurrency) != int(float(concurrency)):
                raise ValueError("concurrency must be a whole number")
            values["concurrency"] = _at_least(int(float(concurrency)), 1, "concurrency")
        if seed is not _UNSET:
            values["seed"] = None if seed in (None, "") else int(seed)
        if retry_schedule is not _UNSET:
            if retry_schedule in ("", "none", "None"):
                retry_schedule = None
            if retry_schedule not in (None, *STRIPE_RETRY_DELAYS):
                raise ValueError(f"retry_schedule must be None or one of "
                                 f"{sorted(STRIPE_RETRY_DELAYS)}, not {retry_schedule!r}")
            values["retry_schedule"] = retry_schedule
        if retry_compression is not _UNSET:
            if not float(retry_compression) > 0:
                raise ValueError("retry_compression must be more than 0")
            values["retry_compression"] = float(retry_compression)
        with self._cond:
            for name, value in values.items():
                setattr(self, name, value)
            if "seed" in values:
                self._rng = random.Random(values["seed"])
            self._cond.notify_all()
            return self.delivery_settings()

    def delivery_settings(self) -> dict:
        return {"delay_ms": self.delay_ms, "jitter": self.jitter,
                "shuffle_window_ms": self.shuffle_window_ms,
                "duplicate_rate": self.duplicate_rate, "concurrency": self.concurrency,
                "seed": self.seed, "retry_schedule": self.retry_schedule,
                "retry_compression": self.retry_compression}

    @property
    def max_in_flight(self) -> int:
        """The most deliveries seen in flight at once since the last reset."""
        return self._max_busy

    def announce(self, count: int) -> None:
        """Note that ``count`` events will be queued once their response is written, so that
        :meth:`wait_idle` does not return in between."""
        if count:
            with self._cond:
                self._announced += count

    def enqueue(self, events: list[dict], announced: bool = False) -> None:
        """Queue deliveries of these events (called once the API response has been sent)."""
        if not events:
            return
        with self._cond:
            if announced:
                self._announced = max(0, self._announced - len(events))
                self._cond.notify_all()
            if not self.url:
                return
            for ev in events:
                payload = json.dumps(ev, indent=2).encode()
                self._new_delivery(ev["id"], ev["type"], payload)
                if self.duplicate_rate and self._rng.random() < self.duplicate_rate:
                    self._new_delivery(ev["id"], ev["type"], payload, duplicate=True)
            self._cond.notify_all()

    def _new_delivery(self, event_id: str, event_type: str, payload: bytes, *,
                      duplicate: bool = False, now: bool = False) -> dict:
        delivery = {
            "id": new_id("whdel"), "event_id": event_id, "event_type": event_type,
            "url": self.url, "status": "pending", "attempts": 0, "last_status_code": None,
            "last_error": None, "history": [], "duplicate": duplicate,
        }
        self._deliveries[delivery["id"]] = delivery
        self._events[event_id] = payload
        if now:
            self._push(time.monotonic(), delivery)
        elif self.shuffle_window_ms > 0:
            if self._window_closes is None:
                self._window_closes = time.monotonic() + self.shuffle_window_ms / 1000.0
            self._window.append(delivery)
        else:
            self._push(time.monotonic() + self._first_delay(), delivery)
        return delivery

    def _first_delay(self) -> float:
        if not self.delay_ms:
            return 0.0
        spread = self.jitter * (2 * self._rng.random() - 1) if self.jitter else 0.0
        return max(0.0, self.delay_ms * (1 + spread)) / 1000.0

    def _push(self, due: float, delivery: dict) -> None:
        heapq.heappush(self._queue, (due, next(self._seq), delivery))

    def _close_window(self) -> None:
        batch, self._window, self._window_closes = self._window, [], None
        self._rng.shuffle(batch)
        base = time.monotonic()
        for i, delivery in enumerate(batch):
            # the shuffled order is kept (tie-broken by seq) unless the delay's jitter reorders
            self._push(base + self._first_delay() + i * 1e-6, delivery)

    def resend(self, delivery_id: str) -> Optional[dict]:
        with self._cond:
            old = self._deliveries.get(delivery_id)
            if old is None or not self.url:
                return None
            delivery = self._new_delivery(old["event_id"], old["event_type"],
                                          self._events[old["event_id"]], now=True)
            self._cond.notify_all()
            return dict(delivery)

    def deliveries(self) -> list[dict]:
        with self._cond:
            return [dict(d, history=list(d["history"])) for d in self._deliveries.values()]

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no delivery is queued, waiting for its shuffle window or being sent."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._window or self._busy or self._announced > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def reset(self) -> None:
        with self._cond:
            self._queue.clear()
            self._window.clear()
            self._window_closes = None
            self._deliveries.clear()
            self._events.clear()
            self._announced = 0
            self._max_busy = self._busy
            self._generation += 1
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    # --- scheduler and senders -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    now = time.monotonic()
                    if self._window_closes is not None and self._window_closes <= now:
                        self._close_window()
                        continue
                    waits = []
                    if self._window_closes is not None:
                        waits.append(self._window_closes - now)
                    if self._queue and self._busy < self.concurrency:
                        wait = self._queue[0][0] - now
                        if wait <= 0:
                            break
                        waits.append(wait)
                    self._cond.wait(min(waits) if waits else None)
                if self._stopped:
                    return
                _, _, delivery = heapq.heappop(self._queue)
                payload = self._events.get(delivery["event_id"]) or b""
                job = (delivery, delivery["url"], payload, self.secret, self.timeout,
                       self._generation)
                self._busy += 1
                self._max_busy = max(self._max_busy, self._busy)
            threading.Thread(target=self._send, args=job, name="stripe-emulator-webhook-send",
                             daemon=True).start()

    def _send(self, delivery: dict, url: str, payload: bytes, secret: str, timeout: float,
              generation: int) -> None:
        status, error = None, "not sent"
        try:
            status, error = self._post(url, payload, secret, timeout)
        finally:
            with self._cond:
                self._busy -= 1
                if generation == self._generation:
                    self._record(delivery, status, error)
                self._cond.notify_all()

    def retry_delay(self, attempts: int) -> Optional[float]:
        """Seconds to wait after the ``attempts``-th failed attempt, None when none is left."""
        if self.retry_schedule is None:
            if attempts >= self.max_attempts:
                return None
            return self.backoff * (2 ** (attempts - 1))
        delays = STRIPE_RETRY_DELAYS[self.retry_schedule]
        if attempts > len(delays):
            return None
        return delays[attempts - 1] / self.retry_compression

    def _record(self, delivery: dict, status: Optional[int], error: Optional[str]) -> None:
        delivery["attempts"] += 1
        delivery["last_status_code"] = status
        delivery["last_error"] = error
        delivery["history"].append({"at": time.time(), "status_code": status, "error": error})
        if status is not None and 200 <= status < 300:
            delivery["status"] = "succeeded"
            return
        delay = self.retry_delay(delivery["attempts"])
        if delay is None:
            delivery["status"] = "failed"
        else:
            self._push(time.monotonic() + delay, delivery)

    @staticmethod
    def _post(url: str, payload: bytes, secret: str,
              timeout: float) -> tuple[Optional[int], Optional[str]]:
        request = urllib.request.Request(url, data=payload, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": sign(payload, secret),
        })
        try:
            with _opener.open(request, timeout=timeout) as response:
                response.read()
                return response.status, None
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except Exception as exc:  # connection refused, timeout...: retried like a non-2xx
            return None, f"{type(exc).__name__}: {exc}"


def _at_least(value, low, name: str):
    if value < low:
        raise ValueError(f"{name} must be {low} or more")
    return value


def _between(value: float, name: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1")
    return value
