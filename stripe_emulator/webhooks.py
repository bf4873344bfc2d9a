"""Webhook deliveries: each event is POSTed, signed, after the API call that caused it answered.

A worker thread sends deliveries in the order they became due. A non-2xx answer (or a connection
error) is retried up to ``max_attempts`` in all, after ``backoff``, 2×``backoff``, 4×... seconds.
The signature is Stripe's: ``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" under the endpoint secret>``, which ``stripe.Webhook.construct_event`` verifies.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Optional

from .objects import new_id

DEFAULT_SECRET = "whsec_stripe_emulator_local_secret"

# No proxies from the environment: deliveries go straight to the configured URL.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sign(payload: bytes, secret: str, timestamp: Optional[int] = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class Dispatcher:
    def __init__(self, url: Optional[str] = None, secret: Optional[str] = None, *,
                 max_attempts: int = 4, backoff: float = 1.0, timeout: float = 10.0) -> None:
        self.url = url
        self.secret = secret or DEFAULT_SECRET
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.timeout = timeout
        self._cond = threading.Condition()
        self._queue: list = []  # heap of (due, seq, delivery)
        self._seq = itertools.count()
        self._deliveries: dict[str, dict] = {}
        self._events: dict[str, bytes] = {}
        self._generation = 0
        self._busy = 0
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
                self._new_delivery(ev["id"], ev["type"],
                                   json.dumps(ev, indent=2).encode())
            self._cond.notify()

    def _new_delivery(self, event_id: str, event_type: str, payload: bytes) -> dict:
        delivery = {
            "id": new_id("whdel"), "event_id": event_id, "event_type": event_type,
            "url": self.url, "status": "pending", "attempts": 0, "last_status_code": None,
            "last_error": None, "history": [],
        }
        self._deliveries[delivery["id"]] = delivery
        self._events[event_id] = payload
        heapq.heappush(self._queue, (time.monotonic(), next(self._seq), delivery))
        return delivery

    def resend(self, delivery_id: str) -> Optional[dict]:
        with self._cond:
            old = self._deliveries.get(delivery_id)
            if old is None or not self.url:
                return None
            delivery = self._new_delivery(old["event_id"], old["event_type"],
                                          self._events[old["event_id"]])
            self._cond.notify()
            return dict(delivery)

    def deliveries(self) -> list[dict]:
        with self._cond:
            return [dict(d, history=list(d["history"])) for d in self._deliveries.values()]

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no delivery is queued or being sent."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy or self._announced > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def reset(self) -> None:
        with self._cond:
            self._queue.clear()
            self._deliveries.clear()
            self._events.clear()
            self._announced = 0
            self._generation += 1
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    # --- worker --------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if self._queue:
                        wait = self._queue[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopped:
                    return
                _, _, delivery = heapq.heappop(self._queue)
                payload = self._events.get(delivery["event_id"])
                url, secret, timeout = delivery["url"], self.secret, self.timeout
                generation = self._generation
                self._busy += 1
            try:
                status, error = self._post(url, payload or b"", secret, timeout)
            finally:
                with self._cond:
                    self._busy -= 1
                    if generation == self._generation:
                        self._record(delivery, status, error)
                    self._cond.notify_all()

    def _record(self, delivery: dict, status: Optional[int], error: Optional[str]) -> None:
        delivery["attempts"] += 1
        delivery["last_status_code"] = status
        delivery["last_error"] = error
        delivery["history"].append({"at": time.time(), "status_code": status, "error": error})
        if status is not None and 200 <= status < 300:
            delivery["status"] = "succeeded"
        elif delivery["attempts"] >= self.max_attempts:
            delivery["status"] = "failed"
        else:
            due = time.monotonic() + self.backoff * (2 ** (delivery["attempts"] - 1))
            heapq.heappush(self._queue, (due, next(self._seq), delivery))

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
