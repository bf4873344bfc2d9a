"""The command line: 127.0.0.1 only, one ready line, clean stop, state file kept across runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
import stripe

from .helpers import ROOT, free_port, start_cli


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_state_file_survives_a_restart(tmp_path, sig):
    port = free_port()
    state_file = tmp_path / "stripe.json"
    proc = start_cli(port, "--state-file", str(state_file))
    client = stripe.StripeClient("sk_test_cli", base_addresses={"api": f"http://127.0.0.1:{port}"},
                                 max_network_retries=0)
    try:
        cus = client.v1.customers.create(params={"email": "keep@example.com"})
        pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    finally:
        proc.send_signal(sig)
        assert proc.wait(10) == 0
    data = json.loads(state_file.read_text())
    assert data["format"] == 1
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]

    proc = start_cli(port, "--state-file", str(state_file))
    try:
        assert client.v1.customers.retrieve(cus.id).email == "keep@example.com"
        listed = client.v1.payment_methods.list(params={"customer": cus.id})
        assert [p.id for p in listed.data] == [pm.id]
        pi = client.v1.payment_intents.create(params={
            "amount": 5000, "currency": "usd", "confirm": True, "customer": cus.id,
            "payment_method": pm.id, "off_session": True})
        assert pi.status == "succeeded"
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_binds_loopback_only():
    port = free_port()
    proc = start_cli(port)
    try:
        addresses = [a for a in _local_addresses() if not a.startswith("127.")]
        for address in addresses:
            with socket.socket() as s:
                s.settimeout(1)
                assert s.connect_ex((address, port)) != 0, address
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def _local_addresses() -> list[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return []
    return sorted({info[4][0] for info in infos})


def test_search_lag_option():
    port = free_port()
    proc = start_cli(port, "--search-lag-ms", "60000")
    base = f"http://127.0.0.1:{port}"
    client = stripe.StripeClient("sk_test_cli", base_addresses={"api": base},
                                 max_network_retries=0)
    try:
        config = json.loads(urllib.request.urlopen(f"{base}/_emulator/config", timeout=5).read())
        assert config == {"latency_ms": 0.0, "search_lag_ms": 60000.0}
        pi = client.v1.payment_intents.create(params={"amount": 5000, "currency": "usd",
                                                      "metadata": {"order": "cli"}})
        found = client.v1.payment_intents.search(params={"query": "metadata['order']:'cli'"})
        assert found.data == []  # a minute behind, on the real clock
        assert [p.id for p in client.v1.payment_intents.list().data] == [pi.id]
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_search_lag_option_defaults_to_0_and_refuses_negative_values():
    port = free_port()
    proc = start_cli(port)
    try:
        config = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/config",
                                                   timeout=5).read())
        assert config["search_lag_ms"] == 0
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    done = subprocess.run([sys.executable, "-m", "stripe_emulator", "--search-lag-ms", "-1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "--search-lag-ms" in done.stderr


def _delivery_settings(port: int) -> dict:
    url = f"http://127.0.0.1:{port}/_emulator/webhooks/delivery"
    return json.loads(urllib.request.urlopen(url, timeout=5).read())


def test_webhook_delivery_options():
    port = free_port()
    proc = start_cli(port, "--webhook-delay-ms", "250", "--webhook-jitter", "0.2",
                  "--webhook-shuffle", "500", "--webhook-duplicate-rate", "0.5",
                  "--webhook-concurrency", "4", "--webhook-seed", "42",
                  "--webhook-retry-schedule", "live", "--webhook-retry-compression", "86400")
    try:
        assert _delivery_settings(port) == {
            "delay_ms": 250.0, "jitter": 0.2, "shuffle_window_ms": 500.0,
            "duplicate_rate": 0.5, "concurrency": 4, "seed": 42, "retry_schedule": "live",
            "retry_compression": 86400.0}
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_webhook_delivery_options_default_to_deterministic_delivery():
    from stripe_emulator.testing import DELIVERY_DEFAULTS

    port = free_port()
    proc = start_cli(port)
    try:
        assert _delivery_settings(port) == DELIVERY_DEFAULTS
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


@pytest.mark.parametrize("args, named", [
    (["--webhook-duplicate-rate", "1.5"], "duplicate_rate"),
    (["--webhook-concurrency", "0"], "concurrency"),
    (["--webhook-delay-ms", "-3"], "delay_ms"),
    (["--webhook-shuffle", "-1"], "shuffle_window_ms"),
    (["--webhook-retry-schedule", "hourly"], "--webhook-retry-schedule"),
])
def test_bad_webhook_delivery_options_are_refused(args, named):
    done = subprocess.run([sys.executable, "-m", "stripe_emulator", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and named in done.stderr, done.stderr
