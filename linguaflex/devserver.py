"""`make run`: serve the API on HOST:PORT (127.0.0.1:8000), against the Stripe emulator when no key is set.

``PORT`` and ``HOST`` (``make run PORT=8123 HOST=0.0.0.0``) choose where Django's development
server listens; ``PUBLIC_BASE_URL`` (where 3-D Secure sends the browser back) defaults to
``http://HOST:PORT`` and the emulator's webhooks follow the port. With an empty STRIPE_SECRET_KEY
it starts ``python -m stripe_emulator`` on 127.0.0.1:STRIPE_EMULATOR_PORT (12111) with a state
file (so a second run keeps the customer and card ids the database points at), webhooks pointed at
this app and a generated webhook secret shared by both, then Django's development server. Both
ports are checked before anything starts: a taken one is one line naming the variable to change,
and exit status 1. Ctrl-C stops both. With a key set, the app talks to Stripe itself.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
DEFAULT_HOST, DEFAULT_PORT, DEFAULT_EMULATOR_PORT = "127.0.0.1", 8000, 12111
EMULATOR_HOST = "127.0.0.1"
EMULATOR_KEY = "sk_test_linguaflex_local_emulator"
WEBHOOK_PATH = "/stripe-payments/webhook/"
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


class ConfigError(Exception):
    """A bad or taken HOST / PORT / STRIPE_EMULATOR_PORT: one line for the developer."""


@dataclass(frozen=True)
class DevConfig:
    host: str  # where runserver listens
    port: int
    emulator_port: int
    public_base_url: str  # PUBLIC_BASE_URL: where 3-D Secure returns
    local_url: str  # where this machine reaches the app (the banner, the emulator's webhooks)
    use_emulator: bool

    @property
    def webhook_url(self) -> str:
        return f"{self.local_url}{WEBHOOK_PATH}"

    @property
    def emulator_url(self) -> str:
        return f"http://{EMULATOR_HOST}:{self.emulator_port}"

    @property
    def runserver_address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(f"{name}={raw!r} is not a port number (1-65535): choose another with make run {name}=8123")
    return int(raw)


def _url_host(host: str) -> str:
    if host in WILDCARD_HOSTS:
        return "127.0.0.1"  # listening everywhere; this machine reaches it on loopback
    return f"[{host}]" if ":" in host else host


def dev_config(env: Mapping[str, str]) -> DevConfig:
    """Where the development server listens and what it tells Stripe, from the environment alone."""
    host = (env.get("HOST") or "").strip() or DEFAULT_HOST
    port = _port(env, "PORT", DEFAULT_PORT)
    emulator_port = _port(env, "STRIPE_EMULATOR_PORT", DEFAULT_EMULATOR_PORT)
    use_emulator = not (env.get("STRIPE_SECRET_KEY") or "").strip()
    if use_emulator and emulator_port == port:
        raise ConfigError(f"PORT and STRIPE_EMULATOR_PORT are both {port}: choose another with make run PORT=8123")
    local_url = f"http://{_url_host(host)}:{port}"
    public = (env.get("PUBLIC_BASE_URL") or "").strip().rstrip("/") or local_url
    return DevConfig(host=host, port=port, emulator_port=emulator_port, public_base_url=public,
                     local_url=local_url, use_emulator=use_emulator)


def port_in_use(host: str, port: int) -> bool:
    """Whether a server could not listen on host:port now (something is bound there)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As Django's and the emulator's servers do: a port left in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(config: DevConfig) -> None:
    """Raise ConfigError naming the variable when a port this run needs is taken."""
    wanted = [("PORT", config.host, config.port)]
    if config.use_emulator:
        wanted.append(("STRIPE_EMULATOR_PORT", EMULATOR_HOST, config.emulator_port))
    for name, host, port in wanted:
        if port_in_use(host, port):
            other = 8123 if port != 8123 else 8124
            if name == "STRIPE_EMULATOR_PORT":
                other = 12112 if port != 12112 else 12113
            raise ConfigError(f"port {port} is in use: choose another with make run {name}={other}")


def _wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _webhook_secret() -> str:
    path = VAR / "emulator-webhook-secret"
    if path.exists():
        return path.read_text().strip()
    secret = "whsec_" + secrets.token_hex(24)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


def main() -> int:
    load_dotenv(ROOT / ".env", override=False)
    env = dict(os.environ)
    try:
        config = dev_config(env)
        check_ports(config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    VAR.mkdir(exist_ok=True)
    env.setdefault("DJANGO_SETTINGS_MODULE", "linguaflex.settings.local")
    env["PUBLIC_BASE_URL"] = config.public_base_url
    if config.host not in WILDCARD_HOSTS | {"127.0.0.1", "localhost"} and not env.get("ALLOWED_HOSTS"):
        env["ALLOWED_HOSTS"] = f"127.0.0.1,localhost,{config.host}"
    emulator = None
    if config.use_emulator:
        secret = _webhook_secret()
        emulator = subprocess.Popen(
            [sys.executable, "-m", "stripe_emulator", "--port", str(config.emulator_port),
             "--state-file", str(VAR / "stripe-emulator-state.json"),
             "--webhook-url", config.webhook_url, "--webhook-secret", secret],
            cwd=ROOT,
        )
        if not _wait_for_port(EMULATOR_HOST, config.emulator_port, 15):
            emulator.terminate()
            print(f"The Stripe emulator did not start on port {config.emulator_port}.", file=sys.stderr)
            return 1
        env.update(STRIPE_SECRET_KEY=EMULATOR_KEY, STRIPE_API_BASE=config.emulator_url, STRIPE_WEBHOOK_SECRET=secret)
        print(f"Stripe: local emulator at {config.emulator_url} (no STRIPE_SECRET_KEY set)")
    else:
        print(f"Stripe: {env.get('STRIPE_API_BASE', 'https://api.stripe.com')} with the configured key")
    url = config.local_url
    print(f"LinguaFlex API: {url}/  docs: {url}/api/docs/  admin: {url}/admin/")
    if config.public_base_url != url:
        print(f"3-D Secure returns to PUBLIC_BASE_URL={config.public_base_url}")
    print("Demo logins (password123): student@example.com, teacher@example.com, admin@example.com")
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", config.runserver_address, "--noreload"],
                              cwd=ROOT, env=env)

    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in (server, emulator):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    sys.exit(main())
