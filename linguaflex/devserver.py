"""`make run`: serve the API on 127.0.0.1:8000, against the Stripe emulator when no key is set.

With an empty STRIPE_SECRET_KEY it starts ``python -m stripe_emulator`` on 127.0.0.1:12111 with a
state file (so a second run keeps the customer and card ids the database points at), webhooks
pointed at this app and a generated webhook secret shared by both, then Django's development
server. Ctrl-C stops both. With a key set, the app talks to Stripe itself.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
HOST, PORT = "127.0.0.1", 8000
EMULATOR_PORT = int(os.environ.get("STRIPE_EMULATOR_PORT", "12111"))
EMULATOR_KEY = "sk_test_linguaflex_local_emulator"


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
    VAR.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "linguaflex.settings.local")
    emulator = None
    if not env.get("STRIPE_SECRET_KEY", "").strip():
        secret = _webhook_secret()
        emulator_url = f"http://127.0.0.1:{EMULATOR_PORT}"
        emulator = subprocess.Popen(
            [sys.executable, "-m", "stripe_emulator", "--port", str(EMULATOR_PORT),
             "--state-file", str(VAR / "stripe-emulator-state.json"),
             "--webhook-url", f"http://{HOST}:{PORT}/stripe-payments/webhook/",
             "--webhook-secret", secret],
            cwd=ROOT,
        )
        if not _wait_for_port("127.0.0.1", EMULATOR_PORT, 15):
            emulator.terminate()
            print(f"The Stripe emulator did not start on port {EMULATOR_PORT}.", file=sys.stderr)
            return 1
        env.update(STRIPE_SECRET_KEY=EMULATOR_KEY, STRIPE_API_BASE=emulator_url, STRIPE_WEBHOOK_SECRET=secret)
        print(f"Stripe: local emulator at {emulator_url} (no STRIPE_SECRET_KEY set)")
    else:
        print(f"Stripe: {env.get('STRIPE_API_BASE', 'https://api.stripe.com')} with the configured key")
    print(f"LinguaFlex API: http://{HOST}:{PORT}/  docs: http://{HOST}:{PORT}/api/docs/  admin: http://{HOST}:{PORT}/admin/")
    print("Demo logins (password123): student@example.com, teacher@example.com, admin@example.com")
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"], cwd=ROOT, env=env)

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
