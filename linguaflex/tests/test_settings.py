"""Settings: the production throttle rates, THROTTLE_RATES parsing, and production's refusals.

Production settings are imported in a fresh interpreter (a subprocess), as a server would. Values a
developer's ``.env`` could supply are set explicitly: ``load_dotenv`` never overrides the environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from linguaflex.settings.env import parse_throttle_rates
from linguaflex.throttling import LoginEmailThrottle, LoginIPThrottle, PaymentThrottle, RegisterThrottle

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_RATES = {"login_email": "5/min", "login_ip": "20/min", "register": "10/hour", "payment": "30/min"}
GOOD_SECRET = "prod-test-" + "k3y" * 20


def production_env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in {"DJANGO_SETTINGS_MODULE", "STRIPE_LOG", "THROTTLE_RATES", "DEBUG", "SECRET_KEY"}}
    env.update({
        "DJANGO_SETTINGS_MODULE": "linguaflex.settings.production",
        "SECRET_KEY": GOOD_SECRET,
        "DEBUG": "false",
        "THROTTLE_RATES": "",
        "STRIPE_LOG": "",
        "ALLOWED_HOSTS": "api.linguaflex.example",
    })
    env.update(overrides)
    return env


def run_python(code: str, **env_overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=production_env(**env_overrides),
                          capture_output=True, text=True, timeout=120)


SETUP_AND_PRINT_RATES = (
    "import json, django; django.setup(); from django.conf import settings; "
    "print(json.dumps(settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']))"
)


# --- the production rates themselves ---------------------------------------------------------------
def test_production_throttle_rates_are_the_contracts_defaults():
    result = run_python(SETUP_AND_PRINT_RATES)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == CONTRACT_RATES


def test_throttle_rates_environment_overrides_one_scope_in_production():
    result = run_python(SETUP_AND_PRINT_RATES, THROTTLE_RATES="payment=1000/min")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {**CONTRACT_RATES, "payment": "1000/min"}


def test_every_throttle_scope_has_a_rate(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]

    for throttle in (LoginEmailThrottle, LoginIPThrottle, RegisterThrottle, PaymentThrottle):
        assert throttle.scope in rates
        assert throttle().parse_rate(rates[throttle.scope])[0] > 0


def test_throttle_parse_rate_of_the_contract_defaults():
    throttle = LoginEmailThrottle()

    assert throttle.parse_rate("5/min") == (5, 60)
    assert throttle.parse_rate("10/hour") == (10, 3600)


# --- THROTTLE_RATES parsing ------------------------------------------------------------------------
def test_parse_throttle_rates_empty_gives_the_defaults():
    assert parse_throttle_rates("", CONTRACT_RATES) == CONTRACT_RATES
    assert parse_throttle_rates(" , ", CONTRACT_RATES) == CONTRACT_RATES


def test_parse_throttle_rates_overrides_several_scopes_with_spaces():
    rates = parse_throttle_rates(" login_email = 1000/min , payment=2/s", CONTRACT_RATES)

    assert rates == {**CONTRACT_RATES, "login_email": "1000/min", "payment": "2/s"}


def test_parse_throttle_rates_does_not_mutate_the_defaults():
    defaults = dict(CONTRACT_RATES)

    parse_throttle_rates("payment=1/min", defaults)

    assert defaults == CONTRACT_RATES


@pytest.mark.parametrize("raw", [
    "payments=1/min",  # unknown scope
    "payment",  # no '='
    "payment=",  # no rate
    "payment=abc",  # no number
    "payment=5",  # no period
    "payment=5/",  # empty period
    "payment=5/fortnight",  # unknown period
    "payment=-1/min",  # negative
    "payment=1.5/min",  # not an integer
    "=5/min",  # no scope
])
def test_parse_throttle_rates_refuses_bad_input(raw):
    with pytest.raises(ImproperlyConfigured):
        parse_throttle_rates(raw, CONTRACT_RATES)


def test_bad_throttle_rates_refuse_to_start():
    result = run_python("import django; django.setup()", THROTTLE_RATES="login_email=lots")

    assert result.returncode != 0
    assert "THROTTLE_RATES" in result.stderr


# --- production refuses unsafe configuration -----------------------------------------------------------
def test_production_settings_load_with_a_secret_key_and_debug_off():
    result = run_python("import django; django.setup(); from django.conf import settings; print(settings.DEBUG)")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_production_refuses_to_start_without_secret_key():
    result = run_python("import django; django.setup()", SECRET_KEY="")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize("debug", ["true", "1", "on"])
def test_production_refuses_to_start_with_debug_on(debug):
    result = run_python("import django; django.setup()", DEBUG=debug)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DEBUG" in result.stderr


def test_production_refuses_a_malformed_debug_value():
    result = run_python("import django; django.setup()", DEBUG="maybe")

    assert result.returncode != 0
    assert "DEBUG" in result.stderr


@pytest.mark.parametrize("module", ["linguaflex.settings.production", "linguaflex.settings.local"])
def test_stripe_log_set_refuses_to_start(module):
    result = run_python("import django; django.setup()", STRIPE_LOG="debug", DJANGO_SETTINGS_MODULE=module)

    assert result.returncode != 0
    assert "STRIPE_LOG" in result.stderr


def test_check_deploy_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_keeps_atomic_requests_off_and_refuses_http():
    result = run_python(
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps([settings.DATABASES['default']['ATOMIC_REQUESTS'], settings.SECURE_SSL_REDIRECT, "
        "settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE]))"
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [False, True, True, True]


def test_test_settings_keep_atomic_requests_off(settings):
    assert settings.DATABASES["default"]["ATOMIC_REQUESTS"] is False


def test_every_beat_entry_names_a_registered_task_and_expires_within_its_period():
    from celery.schedules import crontab
    from django.conf import settings

    from linguaflex.celery import app

    app.loader.import_default_modules()
    assert settings.CELERY_BEAT_SCHEDULE
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name
        if not isinstance(entry["schedule"], crontab):
            assert entry["options"]["expires"] <= entry["schedule"], name
