"""The stack the reliability run drives: PostgreSQL, Redis, the Stripe emulator and gunicorn.

``Stack.start()`` creates a throwaway database ``linguaflex_rel_<random>`` on PostgreSQL, picks an
empty Redis database, migrates, starts the emulator (webhooks off) and gunicorn (production
settings, DEBUG off, ``deploy/gunicorn.conf.py``, 3 gthread workers x 4 threads by default) on free
loopback ports, each in its own session, and configures Django in this process with the same
settings, so the harness can use the ORM and run management commands in-process.
``Stack.stop()`` (also on ``with`` exit) stops both servers (SIGTERM to their process groups, then
SIGKILL), drops the database, flushes the Redis database and keeps the logs under
``reports/reliability/logs/``. It is safe to call twice and after a failed ``start()``.

The API the fault matrix (``bench/reliability/matrix.py``) relies on:

    stack.base_url        the app, "http://127.0.0.1:PORT"
    stack.emulator_url    the emulator
    stack.webhook_secret  STRIPE_WEBHOOK_SECRET, shared with the emulator
    stack.call_command(name, *args) -> (exit status 0/1, stdout+stderr)
    stack.emulator(method, path, /, **json) -> dict   an /_emulator/ control call (EmulatorError if not 2xx);
                          the body may have its own "method" and "path" (a fault)

and helpers the scenarios use (``app``, ``stripe_get``, ``stripe_list``, ``new_user``, ``new_gig``,
``token``, ``worker_pids``, ``wait_workers``, ``consistency``).
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / "reports" / "reliability" / "logs"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"

STRIPE_KEY = "sk_test_rel"
HTTP_TIMEOUT = 60.0  # seconds, for any call to the app; the app's own deadline is 4 s
CONTROL_TIMEOUT = 15.0  # seconds, for an emulator control or /v1 read
REDIS_DBS = range(8, 15)  # 15 is the test suite's; 0 is anyone's
CONSISTENCY_COMMAND = "check_stripe_consistency"

APP_SETTINGS = {
    "DJANGO_SETTINGS_MODULE": "linguaflex.settings.production",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "false",
    "STRIPE_SECRET_KEY": STRIPE_KEY,
    "STRIPE_PUBLISHABLE_KEY": "pk_test_rel",
    "STRIPE_ALLOW_RAW_CARD_DATA": "false",
    "THROTTLE_RATES": "login_email=100000/min,login_ip=100000/min,register=100000/min,payment=100000/min",
    # Short timeouts, so a timeout fault costs seconds, not minutes.
    "STRIPE_MAX_NETWORK_RETRIES": "1",
    "STRIPE_READ_TIMEOUT": "1",
    "STRIPE_CONNECT_TIMEOUT": "1",
    "REQUEST_DEADLINE_SECONDS": "4",
    # No SMTP server here: a receipt must not cost a connection attempt per payment.
    "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
    "PYTHONUNBUFFERED": "1",
}


_django_configured = False


class Unavailable(RuntimeError):
    """PostgreSQL or Redis is not reachable: the caller decides between skip and failure."""


class StackError(RuntimeError):
    """A server did not start, or died."""


class EmulatorError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str):
        super().__init__(f"emulator {method} {path}: HTTP {status}: {body[:300]}")
        self.status = status


@dataclass
class Answer:
    """One HTTP answer from the app: status, JSON body (or text), seconds it took."""

    status: int
    body: Any
    elapsed: float
    headers: dict = field(default_factory=dict)
    error: str = ""  # a transport failure (status 0): timeout, reset

    @property
    def code(self) -> str | None:
        """The error envelope's code, if any."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"].get("code")
        return None

    def brief(self) -> str:
        if self.status == 0:
            return f"no answer ({self.error})"
        return f"{self.status} {self.code or ''}".strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reachable(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def pg_admin_url() -> str:
    """Where to create the throwaway database: RELIABILITY_PG_URL, else PG_URL's server, else local."""
    raw = os.environ.get("RELIABILITY_PG_URL") or os.environ.get("PG_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    parts = urllib.parse.urlparse(raw)
    return urllib.parse.urlunparse(parts._replace(path="/postgres"))


def redis_base_url() -> str:
    raw = os.environ.get("RELIABILITY_REDIS_URL") or "redis://127.0.0.1:6379"
    parts = urllib.parse.urlparse(raw)
    return urllib.parse.urlunparse(parts._replace(path=""))


def services_missing() -> list[str]:
    """Names of the services this run needs and cannot reach (empty: all there)."""
    missing = []
    pg = urllib.parse.urlparse(pg_admin_url())
    if not reachable(pg.hostname or "127.0.0.1", pg.port or 5432):
        missing.append(f"PostgreSQL ({pg.hostname}:{pg.port or 5432})")
    rd = urllib.parse.urlparse(redis_base_url())
    if not reachable(rd.hostname or "127.0.0.1", rd.port or 6379):
        missing.append(f"Redis ({rd.hostname}:{rd.port or 6379})")
    return missing


def _process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


def children_of(pid: int) -> list[int]:
    """Live child processes of ``pid``, from /proc (psutil is not installed)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                rest = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(rest) > 1 and rest[0] != "Z" and int(rest[1]) == pid:
            found.append(int(name))
    return sorted(found)


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _tcp_inode(local_port: int, remote_port: int) -> str | None:
    """The inode of the established loopback TCP socket local_port -> remote_port (/proc/net/tcp)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                lines = fh.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) < 10:
                continue
            lport = int(cols[1].rsplit(":", 1)[1], 16)
            rport = int(cols[2].rsplit(":", 1)[1], 16)
            if lport == local_port and rport == remote_port and cols[3] == "01":
                return cols[9]
    return None


class Stack:
    """PostgreSQL database + Redis database + emulator + gunicorn, on free loopback ports."""

    def __init__(self, *, workers: int = 3, threads: int = 4, log=print, celery: bool = False):
        self.workers = workers
        self.threads = threads
        # celery: a Celery worker on the stack's Redis database as broker (e-mails and webhook events
        # leave the web workers, as deployed); without it, tasks run in-process.
        self.celery = celery
        self.log = log
        self.base_url = ""
        self.emulator_url = ""
        self.webhook_secret = "whsec_rel_" + secrets.token_hex(24)
        self.db_name = "linguaflex_rel_" + secrets.token_hex(6)
        self.database_url = ""
        self.redis_url = ""
        self.app_port = 0
        self.emulator_port = 0
        self.master_pid = 0
        self.env: dict[str, str] = {}
        self._tmp = Path(tempfile.mkdtemp(prefix="linguaflex-rel-"))
        self._procs: dict[str, subprocess.Popen] = {}
        self._log_files: list = []
        self._db_created = False
        self._redis_db: int | None = None
        self._django_ready = False
        self._stopped = False
        self._command_lock = threading.Lock()
        self._local = threading.local()

    # --- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        missing = services_missing()
        if missing:
            raise Unavailable(", ".join(missing) + " not reachable")
        self.app_port = free_port()
        self.emulator_port = free_port()
        while self.emulator_port == self.app_port:
            self.emulator_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.app_port}"
        self.emulator_url = f"http://127.0.0.1:{self.emulator_port}"
        self._create_database()
        self._pick_redis_db()
        self.env = {
            **APP_SETTINGS,
            "SECRET_KEY": "rel-" + secrets.token_urlsafe(48),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "STRIPE_API_BASE": self.emulator_url,
            "STRIPE_WEBHOOK_SECRET": self.webhook_secret,
            "PUBLIC_BASE_URL": self.base_url,
            **({"CELERY_BROKER_URL": self.redis_url} if self.celery else {}),
        }
        self.log(f"stack: database {self.db_name}, Redis {self.redis_url}, app {self.base_url}, "
                 f"emulator {self.emulator_url}")
        self._setup_django()
        self._start_emulator()
        self._start_gunicorn()
        if self.celery:
            self._start_celery()

    def _create_database(self) -> None:
        import psycopg

        admin = pg_admin_url()
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self._db_created = True
        self.database_url = urllib.parse.urlunparse(urllib.parse.urlparse(admin)._replace(path="/" + self.db_name))

    def _drop_database(self) -> None:
        if not self._db_created:
            return
        import psycopg

        try:
            with psycopg.connect(pg_admin_url(), autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            self._db_created = False
        except Exception as exc:
            self.log(f"stack: could not drop database {self.db_name}: {exc}")

    def _pick_redis_db(self) -> None:
        import redis

        base = redis_base_url()
        for db in REDIS_DBS:
            client = redis.Redis.from_url(f"{base}/{db}", socket_timeout=5)
            try:
                if client.dbsize() == 0:
                    self._redis_db = db
                    self.redis_url = f"{base}/{db}"
                    return
            finally:
                client.close()
        raise Unavailable(f"no empty Redis database among {REDIS_DBS.start}..{REDIS_DBS.stop - 1}")

    def _flush_redis(self) -> None:
        if self._redis_db is None:
            return
        import redis

        try:
            client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
            client.flushdb()
            client.close()
        except Exception as exc:
            self.log(f"stack: could not flush {self.redis_url}: {exc}")
        self._redis_db = None

    def _setup_django(self) -> None:
        os.environ.update(self.env)
        # This process's own log level only (the app logs at INFO into its log file).
        os.environ["LOG_LEVEL"] = "ERROR"  # the in-process commands' retries under faults are expected
        os.environ.pop("STRIPE_LOG", None)
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        import django

        global _django_configured
        if _django_configured:
            raise StackError("one Stack per process: Django is already configured for another database")
        django.setup()
        _django_configured = True
        self._django_ready = True
        status, output = self.call_command("migrate", "--noinput", "-v", "0")
        if status != 0:
            raise StackError(f"migrate failed:\n{output}")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        out = open(self._tmp / f"{name}.log", "wb")
        self._log_files.append(out)
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self._procs[name] = proc
        return proc

    def _wait_http(self, url: str, proc: subprocess.Popen, seconds: float, name: str) -> None:
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
        raise StackError(f"{name} did not start (see its log):\n{self.log_tail(name)}")

    def _start_emulator(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Webhooks off: a scenario that needs them turns them on (POST /_emulator/webhooks).
        proc = self._spawn("emulator", [sys.executable, "-m", "stripe_emulator", "--port", str(self.emulator_port),
                                        "--webhook-secret", self.webhook_secret], env)
        self._wait_http(f"{self.emulator_url}/_emulator/health", proc, 30, "emulator")

    def _start_gunicorn(self) -> None:
        env = {**os.environ, **self.env}
        env.pop("LOG_LEVEL", None)
        argv = [sys.executable, "-m", "gunicorn"]
        if GUNICORN_CONF.exists():
            argv += ["-c", str(GUNICORN_CONF)]
        else:
            argv += ["linguaflex.wsgi:application", "--worker-class", "gthread", "--timeout", "65"]
        argv += ["--bind", f"127.0.0.1:{self.app_port}", "--workers", str(self.workers),
                 "--threads", str(self.threads), "--graceful-timeout", "5"]
        proc = self._spawn("gunicorn", argv, env)
        self.master_pid = proc.pid
        self._wait_http(f"{self.base_url}/health/", proc, 60, "gunicorn")
        self.wait_workers(self.workers, timeout=30)

    def _start_celery(self) -> None:
        env = {**os.environ, **self.env}
        env.pop("LOG_LEVEL", None)
        proc = self._spawn("celery", [sys.executable, "-m", "celery", "-A", "linguaflex", "worker", "-l", "INFO",
                                      "--concurrency", "2", "-n", f"{self.db_name}@%h", "--without-mingle",
                                      "--without-gossip"], env)
        deadline = time.monotonic() + 60
        while "ready." not in self.log_text("celery"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise StackError("the Celery worker did not start:\n" + self.log_tail("celery"))
            time.sleep(0.2)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        # A second Ctrl-C must not cut the clean-up short.
        held = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                held[signum] = signal.signal(signum, signal.SIG_IGN)
        try:
            self._stop()
        finally:
            for signum, handler in held.items():
                signal.signal(signum, handler)

    def _stop(self) -> None:
        for name in ("gunicorn", "celery", "emulator"):
            proc = self._procs.get(name)
            if proc is not None:
                self._terminate(proc)
        for fh in self._log_files:
            fh.close()
        if self._django_ready:
            try:
                from django.db import connections

                connections.close_all()
            except Exception:
                pass
        self._drop_database()
        self._flush_redis()
        try:
            LOG_DIR.mkdir(parents=True, exist_ok=True)
            for path in self._tmp.glob("*.log"):
                shutil.copy(path, LOG_DIR / path.name)
        except OSError:
            pass
        shutil.rmtree(self._tmp, ignore_errors=True)

    @staticmethod
    def _terminate(proc: subprocess.Popen) -> None:
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group: stray workers too
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def alive(self) -> bool:
        return all(p.poll() is None for p in self._procs.values())

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self._tmp / f"{name}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_text(self, name: str) -> str:
        try:
            return (self._tmp / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""

    def settings_summary(self) -> dict[str, str]:
        keys = ("DJANGO_SETTINGS_MODULE", "DEBUG", "STRIPE_MAX_NETWORK_RETRIES", "STRIPE_READ_TIMEOUT",
                "STRIPE_CONNECT_TIMEOUT", "REQUEST_DEADLINE_SECONDS", "THROTTLE_RATES", "EMAIL_BACKEND")
        summary = {key: self.env.get(key, "") for key in keys}
        summary["gunicorn"] = (f"{'-c deploy/gunicorn.conf.py, ' if GUNICORN_CONF.exists() else ''}"
                               f"gthread, {self.workers} workers x {self.threads} threads")
        summary["database"] = "PostgreSQL, throwaway database linguaflex_rel_<random> (dropped at the end)"
        summary["cache"] = "Redis (REDIS_URL, an empty database number, flushed at the end)"
        summary["Stripe"] = "stripe_emulator (webhooks off except where a scenario turns them on)"
        return summary

    # --- the matrix's API ---------------------------------------------------------------------------
    def call_command(self, name: str, *args: str) -> tuple[int, str]:
        """Run a management command in this process: (0 or 1, its stdout and stderr)."""
        from django.core.management import call_command
        from django.core.management.base import CommandError
        from django.db import close_old_connections

        out = io.StringIO()
        with self._command_lock:
            status = 0
            try:
                call_command(name, *args, stdout=out, stderr=out)
            except CommandError as exc:
                out.write(f"\nCommandError: {exc}\n")
                status = 1
            except SystemExit as exc:
                status = 0 if exc.code in (0, None) else 1
            except Exception:
                out.write("\n" + traceback.format_exc())
                status = 1
            finally:
                close_old_connections()
        return status, out.getvalue()

    def emulator(self, method: str, path: str, /, **json: Any) -> dict:
        """An /_emulator/ control call: ``emulator("POST", "/_emulator/faults", method=..., path=..., kind=...)``.
        ``path`` may omit the /_emulator/ prefix. GET sends the keywords as the query string."""
        if not path.startswith("/_emulator/"):
            path = "/_emulator/" + path.lstrip("/")
        method = method.upper()
        url = self.emulator_url + path
        kwargs: dict[str, Any] = {"timeout": CONTROL_TIMEOUT}
        if method in ("GET", "DELETE"):
            kwargs["params"] = json or None
        else:
            kwargs["json"] = json
        response = self._control_session().request(method, url, **kwargs)
        if not 200 <= response.status_code < 300:
            raise EmulatorError(method, path, response.status_code, response.text)
        try:
            return response.json()
        except ValueError:
            return {"text": response.text}

    # --- helpers for scenarios -----------------------------------------------------------------
    def _control_session(self) -> requests.Session:
        session = getattr(self._local, "control", None)
        if session is None:
            session = self._local.control = requests.Session()
        return session

    def _app_session(self) -> requests.Session:
        session = getattr(self._local, "app", None)
        if session is None:
            session = self._local.app = requests.Session()
        return session

    def app(self, method: str, path: str, *, token: str | None = None, json: Any = None,
            headers: dict | None = None, data: bytes | None = None, timeout: float = HTTP_TIMEOUT,
            session: requests.Session | None = None) -> Answer:
        """One call to the app; a transport failure is an Answer with status 0, never an exception."""
        all_headers = {"Accept": "application/json"}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        all_headers.update(headers or {})
        started = time.monotonic()
        try:
            response = (session or self._app_session()).request(
                method, self.base_url + path, json=json, data=data, headers=all_headers, timeout=timeout,
                allow_redirects=False)
        except requests.RequestException as exc:
            return Answer(0, None, time.monotonic() - started, error=type(exc).__name__)
        elapsed = time.monotonic() - started
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return Answer(response.status_code, body, elapsed, dict(response.headers))

    def stripe_get(self, path: str, **params: Any) -> dict:
        """GET a /v1 path at the emulator with the app's key."""
        response = self._control_session().get(self.emulator_url + path, params=params or None,
                                               headers={"Authorization": f"Bearer {STRIPE_KEY}"},
                                               timeout=CONTROL_TIMEOUT)
        if response.status_code != 200:
            raise EmulatorError("GET", path, response.status_code, response.text)
        return response.json()

    def stripe_list(self, path: str, *, max_pages: int = 200, **params: Any) -> list[dict]:
        """Every object of a /v1 list (paged by 100, newest first)."""
        items: list[dict] = []
        after = None
        for _ in range(max_pages):
            query = {"limit": 100, **params}
            if after:
                query["starting_after"] = after
            page = self.stripe_get(path, **query)
            items.extend(page.get("data") or [])
            if not page.get("has_more") or not page.get("data"):
                return items
            after = page["data"][-1]["id"]
        raise StackError(f"{path}: more than {max_pages} pages")

    def new_user(self, role: str, label: str = "user"):
        from accounts.models import User

        email = f"{label}-{secrets.token_hex(5)}@rel.linguaflex.test"
        if role == "admin":
            return User.objects.create_superuser(email, None, first_name=label)
        return User.objects.create_user(email, None, role=role, first_name=label)

    def new_gig(self, teacher, price_cents: int, title: str = "Reliability lesson"):
        from gigs.models import Gig

        return Gig.objects.create(teacher=teacher, title=title, description="", language="English",
                                  price_cents=price_cents, currency="usd", duration_minutes=60)

    @staticmethod
    def token(user) -> str:
        """An access token for ``user``, minted with the app's SECRET_KEY (no password hashing)."""
        from rest_framework_simplejwt.tokens import AccessToken

        return str(AccessToken.for_user(user))

    def worker_pids(self) -> list[int]:
        return children_of(self.master_pid) if self.master_pid else []

    def wait_workers(self, count: int, timeout: float = 30.0) -> list[int]:
        """Wait until gunicorn has ``count`` live workers that answer; returns their pids."""
        deadline = time.monotonic() + timeout
        pids: list[int] = []
        while time.monotonic() < deadline:
            pids = [pid for pid in self.worker_pids() if _process_alive(pid)]
            if len(pids) >= count:
                return pids
            if self._procs.get("gunicorn") is not None and self._procs["gunicorn"].poll() is not None:
                raise StackError("gunicorn's master died:\n" + self.log_tail("gunicorn"))
            time.sleep(0.1)
        raise StackError(f"gunicorn has {len(pids)} workers after {timeout:.0f}s, expected {count}")

    def worker_holding(self, client_port: int) -> int | None:
        """The gunicorn worker that accepted the client connection from ``client_port``."""
        inode = _tcp_inode(self.app_port, client_port)
        if inode is None:
            return None
        for pid in self.worker_pids():
            if inode in _socket_inodes(pid):
                return pid
        return None

    def consistency(self, *, since_seconds: float) -> tuple[int | None, str]:
        """``check_stripe_consistency --no-repair`` over what was created in the last
        ``since_seconds``, with no settling grace: (unrepaired differences, or None if the command
        is unavailable or could not compare; its output)."""
        from django.core.management import get_commands

        if CONSISTENCY_COMMAND not in get_commands():
            return None, "consistency check unavailable"
        days = f"{max(since_seconds, 1.0) / 86400:.8f}"
        status, output = self.call_command(CONSISTENCY_COMMAND, "--no-repair", "--since-days", days,
                                           "--grace-minutes", "0")
        if "unrecognized arguments" in output:  # an older command: the plain call
            status, output = self.call_command(CONSISTENCY_COMMAND, "--no-repair")
        unrepaired = sum(1 for line in output.splitlines()
                         if line.startswith(("NOT REPAIRED ", "NEEDS A PERSON ")))
        if status != 0 and unrepaired == 0:
            return None, output  # it could not compare (Stripe unreadable, a crash)
        return unrepaired, output
