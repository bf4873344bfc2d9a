"""Small, typed readers for configuration that comes from the environment."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_throttle_rates(raw: str, defaults: dict[str, str]) -> dict[str, str]:
    """Merge ``scope=rate`` pairs (comma separated) over the default rates."""
    rates = dict(defaults)
    for pair in raw.split(","):
        pair = pair.strip()
        if not pair:
            continue
        scope, sep, rate = pair.partition("=")
        scope, rate = scope.strip(), rate.strip()
        if not sep or scope not in defaults:
            raise ImproperlyConfigured(
                f"THROTTLE_RATES: unknown or malformed pair {pair!r}; scopes are {sorted(defaults)}"
            )
        num, _, period = rate.partition("/")
        if not num.isdigit() or not period or period[0] not in "smhd":
            raise ImproperlyConfigured(f"THROTTLE_RATES: bad rate {rate!r} for {scope} (use N/min)")
        rates[scope] = rate
    return rates
