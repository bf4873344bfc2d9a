"""The QA scripts against a server on low throttle rates: one line naming THROTTLE_RATES, no traceback.

test_backend_payment_flow.py's HTTP helper is driven with `responses`; docs/run_guide_curls.py runs a
two-block guide against a tiny local server that answers 429.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import responses

ROOT = Path(__file__).resolve().parents[2]
BASE = "http://qa.linguaflex.test"


def load_script(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


flow_script = load_script("qa_flow_script", ROOT / "test_backend_payment_flow.py")
guide_runner = load_script("qa_guide_runner", ROOT / "docs" / "run_guide_curls.py")


# --- the flow script --------------------------------------------------------------------------------
@responses.activate
def test_flow_http_helper_turns_a_429_into_throttled():
    responses.add(responses.POST, f"{BASE}/accounts/login/", status=429, json={"success": False})

    with pytest.raises(flow_script.Throttled) as raised:
        flow_script.http_request(requests.Session(), "POST", f"{BASE}/accounts/login/", json={})

    message = str(raised.value)
    assert "429" in message and "THROTTLE_RATES=" in message and "/accounts/login/" in message
    assert "\n" not in message


@responses.activate
def test_flow_http_helper_returns_other_answers():
    responses.add(responses.GET, f"{BASE}/health/", status=503, json={"status": "down"})

    assert flow_script.http_request(requests.Session(), "GET", f"{BASE}/health/").status_code == 503


@responses.activate
def test_flow_script_stops_with_one_throttle_line(capsys):
    responses.add(responses.GET, f"{BASE}/health/", json={"status": "ok"})
    responses.add(responses.POST, f"{BASE}/accounts/login/", status=429,
                  json={"success": False, "error": {"code": "throttled", "message": "slow down"}})

    code = flow_script.main(["--base-url", BASE])

    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [str(flow_script.Throttled("POST", f"{BASE}/accounts/login/"))]
    assert "Traceback" not in err


# --- the guide runner -------------------------------------------------------------------------------
class ThrottlingHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        status, body = (429, b'{"success": false}') if self.path.startswith("/limited") else (200, b'{"ok": 1}')
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def throttling_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ThrottlingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


GUIDE = """# Guide

```bash
curl -fsS http://127.0.0.1:8000/fine | python3 -c 'import json, sys; print(json.load(sys.stdin)["ok"])'
```

## Saved cards

```bash
X=$(curl -fsS http://127.0.0.1:8000/limited/ -H "Authorization: Bearer secret-token" \\
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
echo "never reached $X"
```

```bash
curl -fsS http://127.0.0.1:8000/fine
```
"""


def test_guide_runner_stops_at_a_429_with_one_throttle_line(tmp_path, throttling_server, capfd):
    guide = tmp_path / "GUIDE.md"
    guide.write_text(GUIDE)

    code = guide_runner.main(["--base-url", throttling_server, "--guide", str(guide), "--timeout", "60"])

    out, err = capfd.readouterr()
    assert code == 1
    assert "Traceback" not in out + err and "JSONDecodeError" not in out + err
    assert "never reached" not in out
    throttle_lines = [line for line in err.splitlines() if "THROTTLE_RATES" in line]
    assert throttle_lines == [
        f"block 2 (guide line 9): HTTP 429 Too Many Requests on GET {throttling_server}/limited/: the server's "
        f"throttle rates are too low for the guide; restart it with THROTTLE_RATES={guide_runner.GENEROUS_RATES} "
        "(make run has such rates)"]
    assert "secret-token" not in err
    assert "block  1 (line    3) PASS" in out
    assert "block  2 (line    9) FAIL  (HTTP 429)" in out
    assert "block  3 (line   15) not run" in out


def test_guide_runner_without_a_429_passes(tmp_path, throttling_server, capfd):
    guide = tmp_path / "GUIDE.md"
    guide.write_text("# Guide\n\n```bash\ncurl -fsS http://127.0.0.1:8000/fine\n```\n")

    assert guide_runner.main(["--base-url", throttling_server, "--guide", str(guide), "--timeout", "60"]) == 0
    assert "THROTTLE_RATES" not in capfd.readouterr().err
