"""deploy/: gunicorn and nginx keep query strings (and so card numbers) out of their access logs,
and their timeouts sit above the app's request deadline."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings

from linguaflex.testing.fixtures import require_service

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
PAN = "4242424242424242"


def _load_gunicorn_conf(monkeypatch=None, **env):
    if monkeypatch is not None:
        for name in ("GUNICORN_BIND", "GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_GRACEFUL_TIMEOUT"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("linguaflex_test_gunicorn_conf", GUNICORN_CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _gunicorn_config(module):
    """The settings as gunicorn itself reads a config file (each value through its validator)."""
    from gunicorn.config import Config

    cfg = Config()
    for name, value in vars(module).items():
        if name in cfg.settings:
            cfg.set(name, value)
    return cfg


# --- gunicorn -----------------------------------------------------------------------------------
def test_gunicorn_access_log_format_has_the_path_but_never_the_query_string(monkeypatch):
    fmt = _load_gunicorn_conf(monkeypatch).access_log_format

    for atom in ("%(q)s", "%(r)s", "%(f)s", "{raw_uri}e", "{query_string}e", "{request_uri}e"):
        assert atom.lower() not in fmt.lower(), atom
    assert "%(U)s" in fmt and "%(U)s?" not in fmt
    assert "%(s)s" in fmt and "%(M)s" in fmt and "%({x-request-id}i)s" in fmt


def test_gunicorn_defaults_are_two_gthread_workers_a_core_plus_one_of_four_threads_on_loopback(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    cfg = _gunicorn_config(_load_gunicorn_conf(monkeypatch))

    assert cfg.worker_class_str == "gthread"
    assert (cfg.workers, cfg.threads) == (7, 4)
    assert cfg.control_socket_disable is True
    assert cfg.bind == ["127.0.0.1:8000"]
    assert (cfg.timeout, cfg.graceful_timeout) == (65, 30)
    assert cfg.accesslog == "-"
    assert cfg.wsgi_app == "linguaflex.wsgi:application"


def test_gunicorn_bind_workers_and_threads_come_from_the_environment(monkeypatch):
    cfg = _gunicorn_config(_load_gunicorn_conf(
        monkeypatch, GUNICORN_BIND="0.0.0.0:9000", GUNICORN_WORKERS="5", GUNICORN_THREADS="8"))

    assert (cfg.bind, cfg.workers, cfg.threads) == (["0.0.0.0:9000"], 5, 8)


def test_gunicorn_timeout_is_above_the_request_deadline_and_nginx_read_timeout(monkeypatch):
    cfg = _gunicorn_config(_load_gunicorn_conf(monkeypatch))

    from linguaflex.settings import base  # the production defaults, not the tests' short timeouts

    assert base.STRIPE_CONNECT_TIMEOUT + base.STRIPE_READ_TIMEOUT <= base.REQUEST_DEADLINE_SECONDS
    assert cfg.timeout > settings.REQUEST_DEADLINE_SECONDS
    assert all(cfg.timeout > seconds for seconds in _nginx_seconds("proxy_read_timeout"))


class _Response:
    status = "400 Bad Request"
    headers = [("Content-Type", "application/json")]
    sent = 120


class _Request:
    headers = [("X-REQUEST-ID", "0123456789abcdef"), ("USER-AGENT", "curl")]


def test_gunicorn_redacting_logger_masks_card_numbers_in_access_and_error_lines(monkeypatch, tmp_path):
    module = _load_gunicorn_conf(monkeypatch)
    cfg = _gunicorn_config(module)
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    cfg.set("accesslog", str(access))
    cfg.set("errorlog", str(errors))
    logger = cfg.logger_class(cfg)
    assert isinstance(logger, module.RedactingLogger)
    environ = {
        "REQUEST_METHOD": "GET", "RAW_URI": f"/gigs/{PAN}/?card_number={PAN}", "PATH_INFO": f"/gigs/{PAN}/",
        "QUERY_STRING": f"card_number={PAN}", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
    }
    try:
        logger.access(_Response(), _Request(), environ, timedelta(milliseconds=12))
        logger.error("Invalid request from %s: %s", "127.0.0.1", f"GET /?card_number={PAN} HTTP/1.1")
    finally:
        for log in (logger.access_log, logger.error_log):
            for handler in list(log.handlers):
                handler.close()
                log.removeHandler(handler)

    access_line, error_line = access.read_text(), errors.read_text()
    assert PAN not in access_line and PAN not in error_line
    assert "/gigs/[REDACTED]/" in access_line
    assert "card_number" not in access_line  # no query string at all
    assert "status=400" in access_line and "request_id=0123456789abcdef" in access_line
    assert "[REDACTED]" in error_line


# --- nginx --------------------------------------------------------------------------------------
def _nginx_text() -> str:
    return "\n".join(line.split("#", 1)[0] for line in NGINX_CONF.read_text().splitlines())


def _nginx_directives(name: str) -> list[str]:
    return [value.strip() for value in re.findall(rf"(?:^|[\s;{{}}]){name}\s+(.*?);", _nginx_text(), re.S)]


def _nginx_seconds(name: str) -> list[float]:
    values = _nginx_directives(name)
    assert values, f"{name} is not set"
    return [float(value.rstrip("s")) for value in values]


def test_nginx_log_format_logs_the_path_never_the_request_line_or_query_string():
    formats = _nginx_directives("log_format")

    assert formats
    for fmt in formats:
        assert not re.search(r"\$request(?![_a-z])", fmt), fmt  # $request is the whole request line
        for variable in ("$request_uri", "$args", "$arg_", "$query_string", "$http_referer"):
            assert variable not in fmt, variable
        assert "$linguaflex_log_uri" in fmt or "$uri" in fmt


def test_nginx_every_access_log_uses_the_format_without_query_strings():
    names = {fmt.split()[0] for fmt in _nginx_directives("log_format")}
    logs = _nginx_directives("access_log")

    assert logs
    for log in logs:
        parts = log.split()
        assert parts == ["off"] or (len(parts) >= 2 and parts[1] in names), log  # nginx's default has $request


def test_nginx_masks_card_numbers_in_the_logged_path():
    pcre = re.search(r'map \$uri \$linguaflex_log_uri \{\s*"~(.*?)"', NGINX_CONF.read_text()).group(1)
    pattern = pcre.replace("(?<", "(?P<")  # PCRE's named groups in Python's spelling

    match = re.match(pattern, f"/gigs/{PAN}/")
    assert match and (match.group("uri_head"), match.group("uri_tail")) == ("/gigs/", "/")
    assert re.match(pattern, "/gigs/12/") is None


def test_nginx_read_timeout_is_above_the_request_deadline():
    assert all(seconds > settings.REQUEST_DEADLINE_SECONDS for seconds in _nginx_seconds("proxy_read_timeout"))


def test_nginx_passes_the_request_start_and_forwarding_headers_to_the_app():
    headers = _nginx_directives("proxy_set_header")

    assert 'X-Request-Start "t=${msec}"' in headers
    assert "X-Request-ID $request_id" in headers
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in headers
    assert "X-Forwarded-Proto $scheme" in headers


def test_nginx_body_limit_and_upstreams_match_the_app():
    assert _nginx_directives("client_max_body_size") == [f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024}k"]
    upstreams = [line.split()[1] for line in _nginx_text().splitlines() if line.strip().startswith("server 127.")]
    unit = (ROOT / "deploy" / "systemd" / "linguaflex-web@.service").read_text()

    # Two instances on loopback, each the systemd template's GUNICORN_BIND for its port.
    assert upstreams == ["127.0.0.1:8101", "127.0.0.1:8102"]
    assert "GUNICORN_BIND=127.0.0.1:%i" in unit


def test_nginx_never_sends_a_post_that_reached_an_instance_to_another():
    assert all("non_idempotent" not in value for value in _nginx_directives("proxy_next_upstream"))
    assert re.search(r"location = /metrics/ \{\s*return 404;", _nginx_text())


def test_nginx_accepts_the_config(tmp_path):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    require_service("nginx", nginx is not None, "apt-get install nginx (Debian's package; CI installs it)")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                           "-out", str(cert), "-days", "1", "-subj", "/CN=linguaflex-test"], capture_output=True)
    if made.returncode != 0:
        pytest.skip("openssl could not make a throwaway certificate")
    site = (NGINX_CONF.read_text()
            .replace("/etc/ssl/linguaflex/fullchain.pem", str(cert))
            .replace("/etc/ssl/linguaflex/privkey.pem", str(key))
            .replace("/var/log/nginx/", f"{tmp_path}/"))
    (tmp_path / "site.conf").write_text(site)
    temp = tmp_path / "temp"
    (tmp_path / "main.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\nhttp {{\n"
        f"  access_log {tmp_path}/access.log;\n"
        + "".join(f"  {kind}_temp_path {temp};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        + f"  include {tmp_path}/site.conf;\n}}\n")

    checked = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "main.conf")],
                             capture_output=True, text=True, timeout=30)

    assert checked.returncode == 0, checked.stderr


# --- gunicorn, live -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn_server(tmp_path):
    """gunicorn with deploy/gunicorn.conf.py on a free loopback port, one worker; its output in a file."""
    pytest.importorskip("gunicorn")
    port = _free_port()
    output = tmp_path / "gunicorn.out"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "linguaflex.settings.test", "GUNICORN_BIND": f"127.0.0.1:{port}",
           "GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "2", "PYTHONUNBUFFERED": "1",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}"}
    with output.open("wb") as sink:
        # No control socket: its default path is shared by every gunicorn of this user.
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--no-control-socket"],
                                   cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not start:\n{output.read_text()}")
                time.sleep(0.1)
        yield port, process, output
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _chunks(body: bytes):
    for start in range(0, len(body), 7):
        yield body[start:start + 7]


def test_live_gunicorn_reads_chunked_bodies_and_keeps_card_numbers_out_of_its_log(gunicorn_server):
    port, process, output = gunicorn_server
    body = json.dumps({"email": "chunked@example.test", "password": "Xyzzy-plugh-42", "role": "wizard"}).encode()

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    connection.request("POST", "/accounts/register/", body=_chunks(body), encode_chunked=True,
                       headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    chunked = connection.getresponse()
    chunked_body = json.loads(chunked.read())
    connection.request("GET", f"/gigs/?card_number={PAN}")
    carded = connection.getresponse()
    carded_body = carded.read().decode()
    connection.request("GET", f"/gigs/{PAN}/")
    connection.getresponse().read()
    connection.close()
    process.terminate()
    process.wait(timeout=15)
    log = output.read_text()

    assert chunked.status == 400 and set(chunked_body["error"]["fields"]) == {"role"}, chunked_body
    assert carded.status == 400 and PAN not in carded_body
    assert '"POST /accounts/register/ HTTP/1.1" status=400' in log
    assert '"GET /gigs/ HTTP/1.1" status=400' in log
    assert '"GET /gigs/[REDACTED]/ HTTP/1.1"' in log
    assert PAN not in log and "card_number" not in log
