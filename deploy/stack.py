"""The production stack on this machine: ``make stack`` / ``make stack-down``.

    python deploy/stack.py up [--fresh] [--latency-ms N]   start it, print where it serves
    python deploy/stack.py down                            stop exactly what ``up`` started
    python deploy/stack.py status                          what runs, and where

What runs (each in its own session, its output in ``.stack/logs/``):

- nginx on http://127.0.0.1:8088 (``.stack/nginx/nginx.conf``, written from the template below: the
  production server block of deploy/nginx.conf without TLS), in front of
- two gunicorn instances of the app on 127.0.0.1:8101 and :8102 (``deploy/gunicorn.conf.py``,
  production settings, JSON logs, request ids from nginx, metrics per instance),
- one Celery worker (metrics on 127.0.0.1:9808) and Celery beat,
- the Stripe emulator on 127.0.0.1:12112, delivering its webhooks through nginx,

against PostgreSQL (database ``linguaflex_stack``, migrated at each start) and Redis (database 3 for
the cache, 4 for the broker). E-mails are written to ``.stack/mail/`` (one file per message).
``--fresh`` starts from nothing: the database is dropped and made again, both Redis databases are
flushed, and the emulator forgets its objects (otherwise it keeps them in ``.stack/emulator.json``).

``.stack/state.json`` records every process ``up`` started (its process group) and ``down`` stops
those and nothing else: SIGTERM to each group (gunicorn and Celery finish what they are doing),
then SIGKILL after a grace period. The database and Redis data stay until the next ``--fresh``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACK_DIR = ROOT / ".stack"
STATE_FILE = STACK_DIR / "state.json"
LOG_DIR = STACK_DIR / "logs"
MAIL_DIR = STACK_DIR / "mail"
PROM_DIR = STACK_DIR / "prometheus"
NGINX_DIR = STACK_DIR / "nginx"
EMULATOR_STATE = STACK_DIR / "emulator.json"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"

NGINX_PORT = 8088
APP_PORTS = (8101, 8102)
EMULATOR_PORT = 12112
WORKER_METRICS_PORT = 9808
DB_NAME = "linguaflex_stack"
REDIS_CACHE_DB, REDIS_BROKER_DB = 3, 4
STOP_GRACE_SECONDS = 20

# Names in the order they start; down stops them in reverse.
ORDER = ("emulator", "web-8101", "web-8102", "worker", "beat", "nginx")

TOO_LARGE = json.dumps({"success": False, "error": {"code": "request_too_large",
                                                     "message": "The request body is larger than 64 KiB."}})
NGINX_TEMPLATE = """\
# Written by deploy/stack.py; the production server block of deploy/nginx.conf, without TLS.
worker_processes 2;
pid {dir}/nginx.pid;
error_log {logs}/nginx.error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {dir}/temp/body;
    proxy_temp_path {dir}/temp/proxy;
    fastcgi_temp_path {dir}/temp/fastcgi;
    uwsgi_temp_path {dir}/temp/uwsgi;
    scgi_temp_path {dir}/temp/scgi;
    default_type application/octet-stream;
    server_tokens off;

    map $uri $linguaflex_log_uri {{
        "~^(?<uri_head>.*?)(?:[0-9][ -]?){{12,18}}[0-9](?<uri_tail>.*)$" "${{uri_head}}[REDACTED]${{uri_tail}}";
        default $uri;
    }}
    log_format linguaflex '$remote_addr [$time_local] "$request_method $linguaflex_log_uri $server_protocol" '
                          'status=$status bytes=$body_bytes_sent time=$request_time '
                          'upstream=$upstream_addr upstream_time=$upstream_response_time request_id=$request_id';
    access_log {logs}/nginx.access.log linguaflex;

    upstream linguaflex_app {{
{upstreams}
        keepalive 16;
        keepalive_timeout 4s;
    }}

    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 64k;
        error_page 413 = @request_too_large;

        location / {{
            proxy_pass http://linguaflex_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Request-Start "t=${{msec}}";
            proxy_set_header X-Request-ID $request_id;
            proxy_connect_timeout 5s;
            proxy_send_timeout 60s;
            proxy_read_timeout 60s;
            proxy_next_upstream error timeout http_502;
            proxy_next_upstream_tries 2;
        }}

        location /static/ {{
            alias {static}/;
            expires 1y;
            add_header Cache-Control "public, immutable";
            access_log off;
        }}

        location = /metrics/ {{
            return 404;
        }}

        location @request_too_large {{
            default_type application/json;
            return 413 '{too_large}';
        }}
    }}
}}
"""


class StackError(RuntimeError):
    pass


def say(message: str) -> None:
    print(f"stack: {message}", flush=True)


# --- machine ----------------------------------------------------------------------------------------
def pg_admin_url() -> str:
    return os.environ.get("STACK_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def redis_base_url() -> str:
    return os.environ.get("STACK_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")


def reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not found:
        raise StackError("nginx is not installed: apt-get install nginx (Debian's package)")
    return found


def check_machine() -> None:
    pg = urllib.parse.urlparse(pg_admin_url())
    redis_url = urllib.parse.urlparse(redis_base_url())
    missing = []
    if not reachable(pg.hostname or "127.0.0.1", pg.port or 5432):
        missing.append(f"PostgreSQL at {pg.hostname}:{pg.port or 5432}")
    if not reachable(redis_url.hostname or "127.0.0.1", redis_url.port or 6379):
        missing.append(f"Redis at {redis_url.hostname}:{redis_url.port or 6379}")
    if missing:
        raise StackError(" and ".join(missing) + " not reachable")
    nginx_binary()
    busy = [port for port in (NGINX_PORT, *APP_PORTS, EMULATOR_PORT, WORKER_METRICS_PORT)
            if reachable("127.0.0.1", port, 0.5)]
    if busy:
        raise StackError(f"ports already in use: {busy} (another stack? python deploy/stack.py status)")


def database_url() -> str:
    return urllib.parse.urlunparse(urllib.parse.urlparse(pg_admin_url())._replace(path="/" + DB_NAME))


def prepare_database(*, fresh: bool) -> None:
    import psycopg

    with psycopg.connect(pg_admin_url(), autocommit=True, connect_timeout=5) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def flush_redis() -> None:
    import redis

    for db in (REDIS_CACHE_DB, REDIS_BROKER_DB):
        client = redis.Redis.from_url(f"{redis_base_url()}/{db}", socket_timeout=5)
        try:
            client.flushdb()
        finally:
            client.close()


# --- processes ----------------------------------------------------------------------------------------
def app_env(state: dict) -> dict[str, str]:
    """The production settings every app process (web, worker, beat, manage.py) runs with."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "STRIPE_", "GUNICORN_"))},
        "DJANGO_SETTINGS_MODULE": "linguaflex.settings.production",
        "SECRET_KEY": state["secret_key"],
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",  # nginx here listens on plain HTTP, on loopback
        "DATABASE_URL": database_url(),
        "REDIS_URL": f"{redis_base_url()}/{REDIS_CACHE_DB}",
        "CELERY_BROKER_URL": f"{redis_base_url()}/{REDIS_BROKER_DB}",
        "STRIPE_SECRET_KEY": "sk_test_linguaflex_stack",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_linguaflex_stack",
        "STRIPE_WEBHOOK_SECRET": state["webhook_secret"],
        "STRIPE_API_BASE": f"http://127.0.0.1:{EMULATOR_PORT}",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{NGINX_PORT}",
        "TRUST_X_REQUEST_ID": "true",
        "NUM_PROXIES": "1",
        "LOG_FORMAT": "json",
        "METRICS_TOKEN": state["metrics_token"],
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(MAIL_DIR),
        "THROTTLE_RATES": os.environ.get("STACK_THROTTLE_RATES", ""),
        # The stack test kills the worker mid-run: the event it held is sent again within a minute
        # of this, not after production's five minutes.
        "WEBHOOK_REQUEUE_AFTER_SECONDS": os.environ.get("STACK_WEBHOOK_REQUEUE_AFTER_SECONDS", "30"),
        "PYTHONUNBUFFERED": "1",
    }


def spawn(name: str, argv: list[str], env: dict[str, str]) -> int:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOG_DIR / f"{name}.log", "ab") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return proc.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own child, not reaped) is gone for every purpose here
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22): with the pid, it
    names one process, so ``down`` never signals a pid the system has since given to another."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def ours(state: dict, name: str) -> bool:
    pid = state.get("pids", {}).get(name)
    if not pid or not alive(pid):
        return False
    recorded = state.get("starts", {}).get(name)
    return recorded is None or recorded == start_time(pid)


def wait_http(url: str, name: str, pid: int, seconds: float = 60.0, headers: dict | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=3) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if not alive(pid):
            break
        time.sleep(0.25)
    raise StackError(f"{name} did not come up at {url}; its log: {LOG_DIR / (name + '.log')}\n"
                     + tail(name))


def tail(name: str, lines: int = 30) -> str:
    try:
        return "\n".join((LOG_DIR / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def fresh_dir(path: Path) -> str:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return str(path)


def start_emulator(state: dict, latency_ms: int) -> int:
    argv = [sys.executable, "-m", "stripe_emulator", "--port", str(EMULATOR_PORT),
            "--webhook-url", f"http://127.0.0.1:{NGINX_PORT}/stripe-payments/webhook/",
            "--webhook-secret", state["webhook_secret"], "--state-file", str(EMULATOR_STATE)]
    if latency_ms:
        argv += ["--latency-ms", str(latency_ms)]
    pid = spawn("emulator", argv, {**os.environ, "PYTHONUNBUFFERED": "1"})
    wait_http(f"http://127.0.0.1:{EMULATOR_PORT}/_emulator/health", "emulator", pid)
    return pid


def start_web(state: dict, port: int) -> int:
    name = f"web-{port}"
    env = {**app_env(state), "GUNICORN_BIND": f"127.0.0.1:{port}",
           "GUNICORN_WORKERS": os.environ.get("STACK_GUNICORN_WORKERS", "2"),
           "GUNICORN_THREADS": os.environ.get("STACK_GUNICORN_THREADS", "4"),
           "PROMETHEUS_MULTIPROC_DIR": fresh_dir(PROM_DIR / name)}
    pid = spawn(name, [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF)], env)
    wait_http(f"http://127.0.0.1:{port}/health/ready/", name, pid)
    return pid


def start_worker(state: dict) -> int:
    env = {**app_env(state), "PROMETHEUS_MULTIPROC_DIR": fresh_dir(PROM_DIR / "worker"),
           "CELERY_METRICS_PORT": str(WORKER_METRICS_PORT)}
    pid = spawn("worker", [sys.executable, "-m", "celery", "-A", "linguaflex", "worker", "-l", "INFO",
                           "--concurrency", os.environ.get("STACK_WORKER_CONCURRENCY", "2"),
                           "-n", "linguaflex-stack@%h", "--without-mingle", "--without-gossip"], env)
    wait_http(f"http://127.0.0.1:{WORKER_METRICS_PORT}/metrics", "worker", pid)
    return pid


def start_beat(state: dict) -> int:
    return spawn("beat", [sys.executable, "-m", "celery", "-A", "linguaflex", "beat", "-l", "INFO",
                          "--schedule", str(STACK_DIR / "celerybeat-schedule")],
                 {**app_env(state), "CELERY_METRICS_PORT": "0"})


def nginx_config() -> str:
    return NGINX_TEMPLATE.format(
        dir=NGINX_DIR, logs=LOG_DIR, port=NGINX_PORT, static=ROOT / "staticfiles", too_large=TOO_LARGE,
        upstreams="\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in APP_PORTS))


def start_nginx() -> int:
    (NGINX_DIR / "temp").mkdir(parents=True, exist_ok=True)
    config = NGINX_DIR / "nginx.conf"
    config.write_text(nginx_config())
    nginx = nginx_binary()
    checked = subprocess.run([nginx, "-t", "-q", "-p", str(NGINX_DIR), "-c", str(config)],
                             capture_output=True, text=True)
    if checked.returncode != 0:
        raise StackError(f"nginx refused {config}:\n{checked.stderr}")
    pid = spawn("nginx", [nginx, "-p", str(NGINX_DIR), "-c", str(config), "-g", "daemon off;"], dict(os.environ))
    wait_http(f"http://127.0.0.1:{NGINX_PORT}/health/ready/", "nginx", pid)
    return pid


def manage(state: dict, *args: str) -> None:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=app_env(state),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise StackError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


# --- commands -----------------------------------------------------------------------------------------
def read_state() -> dict | None:
    try:
        return json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return None


def write_state(state: dict) -> None:
    STACK_DIR.mkdir(exist_ok=True)
    STATE_FILE.write_text(json.dumps(state, indent=2))


def up(*, fresh: bool, latency_ms: int) -> dict:
    state = read_state()
    if state and any(ours(state, name) for name in state.get("pids", {})):
        raise StackError("a stack is already running (python deploy/stack.py down first)")
    check_machine()
    previous = state or {}
    state = {
        "secret_key": previous.get("secret_key") or "stack-" + secrets.token_urlsafe(48),
        "webhook_secret": previous.get("webhook_secret") or "whsec_stack_" + secrets.token_hex(24),
        "metrics_token": previous.get("metrics_token") or secrets.token_urlsafe(24),
        "pids": {},
        "starts": {},
        "started_at": time.time(),
    }
    if fresh:
        for path in (EMULATOR_STATE, STACK_DIR / "celerybeat-schedule"):
            path.unlink(missing_ok=True)
        shutil.rmtree(MAIL_DIR, ignore_errors=True)
        shutil.rmtree(LOG_DIR, ignore_errors=True)
    MAIL_DIR.mkdir(parents=True, exist_ok=True)
    write_state(state)
    say(f"PostgreSQL database {DB_NAME}{' (made again)' if fresh else ''}; Redis databases "
        f"{REDIS_CACHE_DB} (cache) and {REDIS_BROKER_DB} (broker)")
    prepare_database(fresh=fresh)
    if fresh:
        flush_redis()
    manage(state, "migrate", "--noinput", "-v", "0")
    manage(state, "collectstatic", "--noinput", "-v", "0")
    try:
        starters = {
            "emulator": lambda: start_emulator(state, latency_ms),
            **{f"web-{port}": (lambda port=port: start_web(state, port)) for port in APP_PORTS},
            "worker": lambda: start_worker(state),
            "beat": lambda: start_beat(state),
            "nginx": start_nginx,
        }
        for name in ORDER:
            state["pids"][name] = starters[name]()
            state["starts"][name] = start_time(state["pids"][name])
            write_state(state)  # recorded at once: a failure later still stops what started
            say(f"{name} started (pid {state['pids'][name]})")
    except BaseException:
        say("start failed; stopping what started")
        down()
        raise
    print_where(state)
    return state


def restart(name: str) -> int:
    """Start one stopped part again (bench/stack_run.py kills and restarts parts mid-run)."""
    state = read_state()
    if not state:
        raise StackError("no stack is running")
    if name.startswith("web-"):
        pid = start_web(state, int(name.split("-", 1)[1]))
    elif name == "worker":
        pid = start_worker(state)
    else:
        raise StackError(f"restart knows web-<port> and worker, not {name}")
    state["pids"][name] = pid
    state.setdefault("starts", {})[name] = start_time(pid)
    write_state(state)
    return pid


def stop_group(pid: int, grace: float = STOP_GRACE_SECONDS) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)  # the group: a worker the master left behind too
    except ProcessLookupError:
        pass


def down() -> None:
    state = read_state()
    if not state:
        say("nothing to stop")
        return
    pids = state.get("pids", {})
    for name in reversed(ORDER):
        if ours(state, name):
            stop_group(pids[name])
            say(f"{name} stopped (pid {pids[name]})")
    state["pids"], state["starts"] = {}, {}
    write_state(state)


def print_where(state: dict) -> None:
    lines = [
        f"LinguaFlex stack: http://127.0.0.1:{NGINX_PORT}/  (nginx -> gunicorn on "
        + ", ".join(f"127.0.0.1:{port}" for port in APP_PORTS) + ")",
        f"  API reference      http://127.0.0.1:{NGINX_PORT}/api/docs/",
        f"  readiness          http://127.0.0.1:{NGINX_PORT}/health/ready/",
        f"  Stripe emulator    http://127.0.0.1:{EMULATOR_PORT}/ (webhooks to nginx)",
        "  metrics            " + ", ".join(f"http://127.0.0.1:{port}/metrics/" for port in APP_PORTS)
        + f" (Authorization: Bearer {state['metrics_token']}); worker http://127.0.0.1:{WORKER_METRICS_PORT}/metrics",
        f"  logs               {LOG_DIR}/   e-mails {MAIL_DIR}/",
        "  stop               make stack-down",
    ]
    print("\n".join(lines), flush=True)


def status() -> int:
    state = read_state()
    if not state or not state.get("pids"):
        say("not running")
        return 1
    for name in ORDER:
        pid = state["pids"].get(name)
        print(f"  {name:10} pid {pid}: {'running' if ours(state, name) else 'stopped'}")
    print_where(state)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/stack.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the stack")
    start.add_argument("--fresh", action="store_true", help="drop the database and Redis data first")
    start.add_argument("--latency-ms", type=int, default=0, help="the emulator's delay per Stripe call")
    commands.add_parser("down", help="stop what up started")
    commands.add_parser("status", help="what runs")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        if args.command == "up":
            up(fresh=args.fresh, latency_ms=args.latency_ms)
        elif args.command == "down":
            down()
        else:
            return status()
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
