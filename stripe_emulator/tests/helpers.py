"""Helpers shared by the emulator's tests."""

from __future__ import annotations

import datetime as _dt
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import stripe

API_KEY = "sk_test_emulator_suite"
NEXT_YEAR = _dt.date.today().year + 1
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cli(port: int, *args: str) -> subprocess.Popen:
    """``python -m stripe_emulator --port PORT *args``, once it says it is listening."""
    proc = subprocess.Popen([sys.executable, "-m", "stripe_emulator", "--port", str(port), *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == f"stripe-emulator listening on http://127.0.0.1:{port}", line
    return proc


def make_client(emulator, **kwargs) -> stripe.StripeClient:
    kwargs.setdefault("max_network_retries", 0)
    return stripe.StripeClient(API_KEY, base_addresses={"api": emulator.base_url}, **kwargs)


def card(number: str, cvc: str | None = None, exp_month: int = 12,
         exp_year: int = NEXT_YEAR) -> dict:
    if cvc is None:
        cvc = "1234" if number.startswith(("34", "37")) else "123"
    return {"type": "card", "card": {"number": number, "exp_month": exp_month,
                                     "exp_year": exp_year, "cvc": cvc}}


class Receiver:
    """A tiny local webhook endpoint: records each POST; answers statuses from a script."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.statuses: list[int] = []  # answered in order, then 200
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.cond:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.received.append({"body": body, "headers": dict(self.headers),
                                              "status": status})
                    receiver.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
