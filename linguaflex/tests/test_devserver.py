"""`make run` (linguaflex/devserver.py): HOST/PORT from the environment, the URLs that follow them,
and one clear line, before anything starts, when a port is taken."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from linguaflex.devserver import ConfigError, check_ports, dev_config, port_in_use

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_defaults_serve_on_8000_with_the_emulator_on_12111():
    config = dev_config({})

    assert (config.host, config.port, config.emulator_port) == ("127.0.0.1", 8000, 12111)
    assert config.public_base_url == "http://127.0.0.1:8000"
    assert config.webhook_url == "http://127.0.0.1:8000/stripe-payments/webhook/"
    assert config.emulator_url == "http://127.0.0.1:12111"
    assert config.runserver_address == "127.0.0.1:8000"
    assert config.use_emulator is True


def test_port_moves_the_return_url_and_the_webhook_target():
    config = dev_config({"PORT": "8123"})

    assert config.runserver_address == "127.0.0.1:8123"
    assert config.public_base_url == "http://127.0.0.1:8123"
    assert config.webhook_url == "http://127.0.0.1:8123/stripe-payments/webhook/"


def test_host_and_port_together():
    config = dev_config({"HOST": "localhost", "PORT": "9001", "STRIPE_EMULATOR_PORT": "12200"})

    assert config.runserver_address == "localhost:9001"
    assert config.public_base_url == "http://localhost:9001"
    assert config.emulator_url == "http://127.0.0.1:12200"


def test_listening_everywhere_is_reached_on_loopback():
    config = dev_config({"HOST": "0.0.0.0", "PORT": "8123"})

    assert config.runserver_address == "0.0.0.0:8123"
    assert config.public_base_url == "http://127.0.0.1:8123"
    assert config.webhook_url == "http://127.0.0.1:8123/stripe-payments/webhook/"


def test_an_explicit_public_base_url_wins():
    config = dev_config({"PORT": "8123", "PUBLIC_BASE_URL": "https://dev.linguaflex.example/"})

    assert config.public_base_url == "https://dev.linguaflex.example"
    assert config.webhook_url == "http://127.0.0.1:8123/stripe-payments/webhook/"


def test_a_stripe_key_means_no_emulator():
    assert dev_config({"STRIPE_SECRET_KEY": "sk_test_x"}).use_emulator is False


@pytest.mark.parametrize("value", ["abc", "0", "70000", "-1"])
def test_a_bad_port_is_one_line_naming_the_variable(value):
    with pytest.raises(ConfigError) as raised:
        dev_config({"PORT": value})

    assert "PORT=" in str(raised.value) and "\n" not in str(raised.value)


def test_the_app_and_the_emulator_cannot_share_a_port():
    with pytest.raises(ConfigError, match="STRIPE_EMULATOR_PORT"):
        dev_config({"PORT": "12111"})


def test_port_in_use_sees_a_bound_socket(taken_port):
    assert port_in_use("127.0.0.1", taken_port) is True
    assert port_in_use("127.0.0.1", free_port()) is False


def test_a_taken_app_port_names_port(taken_port):
    config = dev_config({"PORT": str(taken_port), "STRIPE_EMULATOR_PORT": str(free_port())})

    with pytest.raises(ConfigError) as raised:
        check_ports(config)

    assert str(raised.value) == f"port {taken_port} is in use: choose another with make run PORT=8123"


def test_a_taken_emulator_port_names_stripe_emulator_port(taken_port):
    config = dev_config({"PORT": str(free_port()), "STRIPE_EMULATOR_PORT": str(taken_port)})

    with pytest.raises(ConfigError) as raised:
        check_ports(config)

    assert str(raised.value) == f"port {taken_port} is in use: choose another with make run STRIPE_EMULATOR_PORT=12112"


def test_a_taken_emulator_port_does_not_matter_with_a_stripe_key(taken_port):
    check_ports(dev_config({"PORT": str(free_port()), "STRIPE_EMULATOR_PORT": str(taken_port),
                            "STRIPE_SECRET_KEY": "sk_test_x"}))


def test_make_run_with_a_taken_port_prints_one_line_and_exits_1(taken_port):
    env = {key: value for key, value in os.environ.items() if key not in {"STRIPE_SECRET_KEY", "PUBLIC_BASE_URL"}}
    env.update(PORT=str(free_port()), STRIPE_EMULATOR_PORT=str(taken_port), STRIPE_SECRET_KEY="")

    result = subprocess.run([sys.executable, "-m", "linguaflex.devserver"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert result.stdout == ""  # no banner, nothing started
    assert result.stderr.strip().splitlines() == [
        f"port {taken_port} is in use: choose another with make run STRIPE_EMULATOR_PORT=12112"]


# --- the development server's throttle rates (linguaflex/settings/local.py) ---------------------------
PRINT_RATES = ("import json, django; django.setup(); from django.conf import settings; "
               "print(json.dumps(settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']))")
CONTRACT_SCOPES = {"login_email", "login_ip", "register", "payment"}


def local_rates(throttle_rates: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env.update(DJANGO_SETTINGS_MODULE="linguaflex.settings.local", THROTTLE_RATES=throttle_rates)
    result = subprocess.run([sys.executable, "-c", PRINT_RATES], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_make_run_has_generous_rates_for_every_scope():
    assert local_rates("") == {scope: "1000/min" for scope in CONTRACT_SCOPES}


def test_throttle_rates_still_override_the_development_rates():
    assert local_rates("payment=5/min") == {**{scope: "1000/min" for scope in CONTRACT_SCOPES}, "payment": "5/min"}
