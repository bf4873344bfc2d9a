"""What the browser tests (test_browser.py) drive: headless Chromium with no network, the app under
gunicorn with the production settings, and ``make run``'s development server, each on free loopback
ports in its own process group, against the Stripe emulator.

Chromium is Debian's (``apt-get install chromium chromium-driver``): Selenium is handed both paths,
so Selenium Manager is never run and nothing is downloaded. The browser has no network: every
request goes to a proxy on 127.0.0.1:9, where nothing listens (loopback is never proxied), and no
host name but 127.0.0.1 / localhost resolves. ``requested_urls`` reads the browser's performance log,
so a test can assert that the browser sent no request anywhere but to the servers under test.

``ProductionStack``: a throwaway SQLite database (migrate + load_demo_data, as ``.ci/qa`` does),
``collectstatic`` into a temporary STATIC_ROOT, the emulator (webhooks to the app) and gunicorn with
``deploy/gunicorn.conf.py`` and ``linguaflex.settings.production`` over plain HTTP on loopback
(``SECURE_SSL_REDIRECT=false``, as ``.ci/qa`` and ``bench/reliability`` run it). The session and CSRF
cookies stay ``Secure``: Chromium keeps them for http://127.0.0.1, a potentially trustworthy origin,
so the admin login works as it does behind TLS. The settings module
gunicorn loads is the production one with STATIC_ROOT moved into the temporary directory (written
there at start-up), so a test run never rewrites the repository's ``staticfiles/``.

``DevServer``: ``linguaflex.devserver.main()`` (what ``make run`` runs after migrate and
load_demo_data) with PORT and STRIPE_EMULATOR_PORT set to free ports and no STRIPE_SECRET_KEY, so
it starts its own emulator; its state file and webhook secret go to the temporary directory
instead of the repository's ``var/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HOW_TO_INSTALL = ("install Debian's packages: apt-get install chromium chromium-driver "
                  "(and selenium: pip install -r requirements-dev.txt)")

DEMO_PASSWORD = "password123"
STUDENT, ADMIN = "student@example.com", "admin@example.com"
CARD_OK, CARD_3DS = "4242424242424242", "4000002500003155"
THROTTLES = "login_email=1000/min,login_ip=1000/min,register=1000/min,payment=1000/min"
HTTP_TIMEOUT = 30
# Schemes that never touch the network (chrome: and chrome-error: are the browser's own pages).
LOCAL_SCHEMES = ("data:", "blob:", "about:", "chrome:", "chrome-error:")


class StackError(RuntimeError):
    """A server did not start, or a set-up command failed (the message carries its log)."""


def browser_missing() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    return f"{', '.join(missing)} missing" if missing else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


# --- processes -------------------------------------------------------------------------------------
def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would point a server elsewhere (the test suite's
    settings and database, a developer's Redis or Stripe key), plus ``extra``. Variables the
    servers must not take from a developer's .env are set explicitly, empty if need be."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "STRIPE_", "SECURE_", "GUNICORN_", "PYTEST_"))
           and key not in {"DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL", "ALLOWED_HOSTS", "DEBUG",
                           "SECRET_KEY", "THROTTLE_RATES", "EMAIL_BACKEND", "PORT", "HOST", "PYTHONPATH"}}
    env.update(PYTHONUNBUFFERED="1", REDIS_URL="", STRIPE_LOG="")
    env.update(extra)
    return env


class Processes:
    """Servers in their own sessions, output in ``tmp/<name>.log``; ``stop()`` ends each process
    group (SIGTERM, then SIGKILL)."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}
        self.deadlines: dict[str, float] = {}

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        with open(self.tmp / f"{name}.log", "wb") as out:
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def run(self, name: str, argv: list[str], env: dict[str, str], timeout: float = 120) -> None:
        """A set-up command, started now; ``wait(name)`` collects it (and fails on a non-zero exit)."""
        self.spawn(name, argv, env)
        self.deadlines[name] = time.monotonic() + timeout

    def wait(self, name: str) -> None:
        proc = self.procs[name]
        try:
            status = proc.wait(timeout=max(1.0, self.deadlines[name] - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._end(proc)
            raise StackError(f"{name} timed out:\n{self.log(name)}") from None
        if status != 0:
            raise StackError(f"{name} failed (exit {status}):\n{self.log(name)}")

    def log(self, name: str, lines: int = 60) -> str:
        try:
            text = (self.tmp / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_http(self, name: str, url: str, seconds: float = 60) -> None:
        proc = self.procs[name]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise StackError(f"{name} did not answer {url} (see its log):\n{self.log(name)}")

    @staticmethod
    def _end(proc: subprocess.Popen) -> None:
        """SIGTERM to the process group, SIGKILL to whatever of it is left after 10 s."""
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            self._end(proc)


def migrated_database(path: Path, processes: Processes) -> None:
    """``make run``'s ``demo`` target into ``path``: migrate, then the demo users and gigs."""
    env = _clean_env(DJANGO_SETTINGS_MODULE="linguaflex.settings.local", DATABASE_URL=f"sqlite:///{path}")
    processes.run("migrate", [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env)
    processes.wait("migrate")
    processes.run("load_demo_data", [sys.executable, "manage.py", "load_demo_data"], env)
    processes.wait("load_demo_data")


def copy_database(source: Path, target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")


# --- the app under gunicorn, production settings ------------------------------------------------
class ProductionStack:
    def __init__(self, template_db: Path, tmp: Path):
        self.tmp = tmp
        self.processes = Processes(self.tmp)
        self.template_db = template_db
        self.app_port, self.emulator_port = free_ports(2)
        self.base_url = f"http://127.0.0.1:{self.app_port}"
        self.emulator_url = f"http://127.0.0.1:{self.emulator_port}"
        self.webhook_secret = "whsec_browser_" + secrets.token_hex(24)
        self.static_root = self.tmp / "staticfiles"
        settings_dir = self.tmp / "settings"
        settings_dir.mkdir(exist_ok=True)
        (settings_dir / "linguaflex_browser_production.py").write_text(
            '"""linguaflex.settings.production, with STATIC_ROOT in the browser test\'s temporary directory."""\n'
            "from linguaflex.settings.production import *  # noqa: F401,F403\n\n"
            f"STATIC_ROOT = {str(self.static_root)!r}\n")
        self.env = _clean_env(
            DJANGO_SETTINGS_MODULE="linguaflex_browser_production",
            PYTHONPATH=os.pathsep.join([str(settings_dir), str(ROOT)]),
            SECRET_KEY="browser-" + secrets.token_urlsafe(48),
            DEBUG="false",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            # No TLS on loopback (the project's own live runs do the same: .ci/qa, bench/reliability).
            SECURE_SSL_REDIRECT="false",
            DATABASE_URL=f"sqlite:///{self.tmp / 'app.sqlite3'}",
            STRIPE_SECRET_KEY="sk_test_linguaflex_browser",
            STRIPE_PUBLISHABLE_KEY="pk_test_linguaflex_browser",
            STRIPE_API_BASE=self.emulator_url,
            STRIPE_WEBHOOK_SECRET=self.webhook_secret,
            STRIPE_ALLOW_RAW_CARD_DATA="false",
            PUBLIC_BASE_URL=self.base_url,
            THROTTLE_RATES=THROTTLES,
            EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
            GUNICORN_BIND=f"127.0.0.1:{self.app_port}",
            GUNICORN_WORKERS="2",
            GUNICORN_THREADS="4",
        )

    def start(self) -> None:
        copy_database(self.template_db, self.tmp / "app.sqlite3")
        self.processes.run("collectstatic", [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
                           self.env)
        self.processes.spawn("emulator", [sys.executable, "-m", "stripe_emulator", "--port", str(self.emulator_port),
                                          "--webhook-url", f"{self.base_url}/stripe-payments/webhook/",
                                          "--webhook-secret", self.webhook_secret],
                             _clean_env())
        self.processes.wait("collectstatic")
        self.processes.spawn("gunicorn", [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF),
                                          "--no-control-socket", "--graceful-timeout", "5"], self.env)
        self.processes.wait_http("emulator", f"{self.emulator_url}/_emulator/health", 30)
        self.processes.wait_http("gunicorn", f"{self.base_url}/health/", 60)

    def stop(self) -> None:
        self.processes.stop()


# --- `make run`: linguaflex/devserver.py ------------------------------------------------------------
# devserver.main(), with its var/ directory (emulator state file, webhook secret) moved to argv[1].
DEVSERVER_MAIN = ("import sys; from pathlib import Path; import linguaflex.devserver as d; "
                  "d.VAR = Path(sys.argv[1]); sys.exit(d.main())")


class DevServer:
    def __init__(self, template_db: Path, tmp: Path):
        self.tmp = tmp
        self.processes = Processes(tmp)
        self.template_db = template_db
        self.port, self.emulator_port = free_ports(2)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = _clean_env(PORT=str(self.port), STRIPE_EMULATOR_PORT=str(self.emulator_port),
                              STRIPE_SECRET_KEY="", DATABASE_URL=f"sqlite:///{tmp / 'dev.sqlite3'}")

    def start(self) -> None:
        copy_database(self.template_db, self.tmp / "dev.sqlite3")
        (self.tmp / "var").mkdir(exist_ok=True)
        self.processes.spawn("devserver", [sys.executable, "-c", DEVSERVER_MAIN, str(self.tmp / "var")], self.env)
        self.processes.wait_http("devserver", f"{self.base_url}/health/", 60)

    def stop(self) -> None:
        self.processes.stop()


# --- the API, as a client would call it ----------------------------------------------------------------
def api_token(base_url: str, email: str, password: str = DEMO_PASSWORD) -> str:
    response = requests.post(f"{base_url}/accounts/login/", json={"email": email, "password": password},
                             timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()["access"]


def demo_gig(base_url: str, token: str, title: str = "Conversational Spanish") -> dict:
    response = requests.get(f"{base_url}/gigs/?page_size=100", headers={"Authorization": f"Bearer {token}"},
                            timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text
    return next(gig for gig in response.json()["results"] if gig["title"] == title)


def process_payment(base_url: str, token: str, gig_id: int, card_number: str) -> requests.Response:
    card = {"card_number": card_number, "exp_month": 12, "exp_year": date.today().year + 3, "cvc": "123",
            "cardholder_name": "Browser Test"}
    return requests.post(f"{base_url}/stripe-payments/process-payment/", json={"gig_id": gig_id, "card_details": card},
                         headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT)


def schema_operations(base_url: str) -> dict[tuple[str, str], str]:
    """(METHOD, path) -> operationId for every operation of /api/schema/."""
    response = requests.get(f"{base_url}/api/schema/?format=json", timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {(method.upper(), path): operation["operationId"]
            for path, item in response.json()["paths"].items()
            for method, operation in item.items() if method in methods}


# --- Chromium ----------------------------------------------------------------------------------------
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
    # No network: everything but loopback goes to a proxy where nothing listens, and no other name resolves.
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
    # None of Chromium's own background traffic (updates, safe browsing, sync, metrics).
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-first-run",
    "--no-default-browser-check",
]


def chromium(user_data_dir: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in CHROMIUM_ARGS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    # An explicit driver path: Selenium Manager is not run, so nothing is looked up or downloaded
    # (and SE_OFFLINE would keep it offline if it were).
    os.environ.setdefault("SE_OFFLINE", "true")
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(user_data_dir.parent / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


def requested_urls(driver) -> list[str]:
    """Every URL the browser sent a request for since the last call (the performance log is
    drained). A request the browser refused before the network (``blockedReason``: a Content
    Security Policy, mixed content) never left it and is not counted."""
    sent: list[tuple[str, str]] = []
    blocked: set[str] = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"]).get("message", {})
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            sent.append((params["requestId"], params["request"]["url"]))
        elif message.get("method") == "Network.loadingFailed" and params.get("blockedReason"):
            blocked.add(params["requestId"])
    return [url for request_id, url in sent if request_id not in blocked]


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def outside(urls: list[str], *origins: str) -> list[str]:
    """The URLs that are neither on one of ``origins`` nor local (data:, blob:, about:)."""
    allowed = {origin(o) for o in origins}
    return [url for url in urls if not url.startswith(LOCAL_SCHEMES) and origin(url) not in allowed]


def console_errors(driver) -> list[str]:
    """SEVERE console entries since the last call, a missing favicon aside."""
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "favicon" not in entry["message"]]
