"""deploy/stack.py (make stack): its nginx configuration is valid and mirrors production's proxy
rules, and ``down`` stops exactly the processes ``up`` recorded. The whole stack under load and
faults is ``make stack-test`` (bench/stack_run.py), which CI runs."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from linguaflex.testing.fixtures import require_service

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("linguaflex_test_stack", ROOT / "deploy" / "stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, path in (("STACK_DIR", tmp_path), ("STATE_FILE", tmp_path / "state.json"),
                       ("LOG_DIR", tmp_path / "logs"), ("NGINX_DIR", tmp_path / "nginx")):
        monkeypatch.setattr(module, name, path)
    return module


def _directives(text: str, name: str) -> set[str]:
    return {" ".join(value.split()) for value in re.findall(rf"(?:^|[\s;{{}}]){name}\s+(.*?);", text, re.S)}


def _rendered(stack) -> str:
    return stack.nginx_config()


def test_the_stacks_nginx_proxies_like_production(stack):
    ours = _rendered(stack)
    production = "\n".join(line.split("#", 1)[0] for line in (ROOT / "deploy" / "nginx.conf").read_text().splitlines())

    for directive in ("proxy_set_header", "proxy_read_timeout", "proxy_connect_timeout", "proxy_next_upstream",
                      "client_max_body_size"):
        assert _directives(ours, directive), directive
        assert _directives(ours, directive) <= _directives(production, directive), directive
    assert "X-Request-ID $request_id" in _directives(ours, "proxy_set_header")
    assert re.search(r"location = /metrics/ \{\s*return 404;", ours)
    assert "$request_uri" not in ours and "$args" not in ours


def test_the_stacks_nginx_config_is_accepted(stack, tmp_path):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    require_service("nginx", nginx is not None, "apt-get install nginx (Debian's package; CI installs it)")
    (stack.NGINX_DIR / "temp").mkdir(parents=True)
    stack.LOG_DIR.mkdir()
    config = stack.NGINX_DIR / "nginx.conf"
    config.write_text(_rendered(stack))

    checked = subprocess.run([nginx, "-t", "-p", str(stack.NGINX_DIR), "-c", str(config)], capture_output=True,
                             text=True, timeout=30)

    assert checked.returncode == 0, checked.stderr


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)


def test_down_stops_exactly_the_recorded_processes(stack):
    recorded, stranger = _sleeper(), _sleeper()
    try:
        stack.write_state({"pids": {"worker": recorded.pid}})

        stack.down()

        assert recorded.wait(timeout=30) is not None
        assert stranger.poll() is None
        assert json.loads(stack.STATE_FILE.read_text())["pids"] == {}
    finally:
        for proc in (recorded, stranger):
            proc.kill()
            proc.wait(timeout=10)


def test_up_refuses_while_a_recorded_process_runs(stack):
    running = _sleeper()
    try:
        stack.write_state({"pids": {"beat": running.pid}})

        with pytest.raises(stack.StackError, match="already running"):
            stack.up(fresh=False, latency_ms=0)
    finally:
        running.kill()
        running.wait(timeout=10)


def test_down_with_nothing_recorded_does_nothing(stack, capsys):
    stack.down()

    assert "nothing to stop" in capsys.readouterr().out


def test_a_zombie_counts_as_stopped(stack):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{child.pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except OSError:
            break
        time.sleep(0.05)

    assert stack.alive(child.pid) is False
    child.wait(timeout=5)


def test_down_leaves_a_process_that_took_a_recorded_pid_since(stack):
    """After a reboot a recorded pid may be someone else's: its start time tells them apart."""
    stranger = _sleeper()
    try:
        stack.write_state({"pids": {"worker": stranger.pid}, "starts": {"worker": "1"}})

        stack.down()

        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait(timeout=10)
