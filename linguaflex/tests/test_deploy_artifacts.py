"""Deployment artefacts (Dockerfile, compose.yaml, Procfile, systemd units, Prometheus rules, the
Grafana dashboard, compose's nginx) parse, hang together, and name only metrics the app exports.
Plain file checks: no database, no Docker, no network."""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"  # BuildKit reads it beside the Dockerfile
COMPOSE = DEPLOY / "compose.yaml"
PROCFILE = DEPLOY / "Procfile"
SYSTEMD = DEPLOY / "systemd"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "linguaflex-dashboard.json"
NGINX_COMPOSE = DEPLOY / "nginx" / "compose.conf"

# The metric families the app exports. Another test checks this list against the real registry.
EXPORTED = frozenset(
    {
        "linguaflex_http_request_duration_seconds",
        "linguaflex_payments_total",
        "linguaflex_stripe_call_duration_seconds",
        "linguaflex_stripe_call_errors_total",
        "linguaflex_webhook_events_total",
        "linguaflex_webhook_lag_seconds",
        "linguaflex_webhook_events_unapplied",
        "linguaflex_webhook_oldest_unapplied_age_seconds",
        "linguaflex_celery_queue_depth",
        "linguaflex_celery_tasks_total",
        "linguaflex_ledger_check_ok",
        "linguaflex_ledger_check_problems",
        "linguaflex_ledger_check_timestamp_seconds",
    }
)

ALERT_NAMES = (
    "PaymentFailureRateHigh",
    "WebhookLagHigh",
    "WebhookEventsUnapplied",
    "CeleryQueueBacklog",
    "CeleryTaskFailures",
    "LedgerCheckFailed",
    "StripeErrorsHigh",
    "AppDown",
)

SYSTEMD_UNITS = (
    "linguaflex-web@.service",
    "linguaflex-worker.service",
    "linguaflex-beat.service",
    "linguaflex-migrate.service",
)

METRIC_RE = re.compile(r"linguaflex_[a-z_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def metric_families(expr: str) -> set[str]:
    """The linguaflex_* metric families an expression names (histogram series folded to their family)."""
    families = set()
    for name in METRIC_RE.findall(expr):
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        families.add(name)
    return families


# --- Dockerfile ---------------------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        logical.append(current)
        current = ""
    if current:
        logical.append(current)
    instructions = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def test_dockerfile_base_image_and_pinned_requirements():
    instructions = _dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim-bookworm")
    runs = [args for keyword, args in instructions if keyword == "RUN"]
    assert any("pip install -r requirements.txt" in run for run in runs)


def test_dockerfile_runs_as_non_root():
    users = [args for keyword, args in _dockerfile_instructions() if keyword == "USER"]
    assert users, "the image must switch to a non-root USER"
    final_user = users[-1].split(":")[0]
    assert final_user not in {"root", "0"}


def test_dockerfile_collectstatic_secret_key_only_on_its_run_line():
    instructions = _dockerfile_instructions()
    collect = [args for keyword, args in instructions if keyword == "RUN" and "collectstatic" in args]
    assert len(collect) == 1
    assert "DJANGO_SETTINGS_MODULE=linguaflex.settings.production" in collect[0]
    assert "SECRET_KEY=" in collect[0]
    for keyword, args in instructions:
        if keyword in {"ENV", "ARG"}:
            assert "SECRET_KEY" not in args, "the build-time SECRET_KEY must not persist in the image"


def test_dockerfile_healthcheck_expose_and_gunicorn():
    instructions = _dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    assert "HEALTHCHECK" in keywords
    healthcheck = dict(instructions)["HEALTHCHECK"]
    assert "urllib" in healthcheck and "http://127.0.0.1:8000/health/" in healthcheck
    assert ("EXPOSE", "8000") in instructions
    envs = " ".join(args for keyword, args in instructions if keyword == "ENV")
    assert "GUNICORN_BIND=0.0.0.0:8000" in envs
    cmd = dict(instructions)["CMD"]
    assert json.loads(cmd) == ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
    assert (ROOT / "deploy" / "gunicorn.conf.py").is_file()


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    entries = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip()}
    for pattern in (".venv", ".git", ".stack", "reports", "*.sqlite3", ".env", "node_modules", "__pycache__"):
        assert pattern in entries


# --- compose.yaml -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_services(compose):
    assert set(compose["services"]) >= {"web", "worker", "beat", "nginx", "postgres", "redis"}


def test_compose_healthchecks(compose):
    for name, service in compose["services"].items():
        if name in {"worker", "beat"}:
            continue
        assert "test" in service.get("healthcheck", {}), f"{name} has no healthcheck"
    assert any("pg_isready" in part for part in _as_list(compose["services"]["postgres"]["healthcheck"]["test"]))
    assert "redis-cli" in _as_list(compose["services"]["redis"]["healthcheck"]["test"])
    assert any("/health/ready/" in part for part in _as_list(compose["services"]["web"]["healthcheck"]["test"]))


def _as_list(value) -> list[str]:
    return value if isinstance(value, list) else [value]


def test_compose_web_waits_for_healthy_postgres_and_redis(compose):
    depends_on = compose["services"]["web"]["depends_on"]
    for dependency in ("postgres", "redis"):
        assert depends_on[dependency]["condition"] == "service_healthy"


def test_compose_web_environment_and_command(compose):
    web = compose["services"]["web"]
    # compose.yaml lives in deploy/; the build context is the repository root.
    assert web["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / web["build"]["context"] / web["build"]["dockerfile"]).resolve() == DOCKERFILE.resolve()
    env = web["environment"]
    assert env["DJANGO_SETTINGS_MODULE"] == "linguaflex.settings.production"
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["CELERY_BROKER_URL"] == "redis://redis:6379/1"
    assert "DATABASE_URL" in env and "METRICS_TOKEN" in env
    assert str(env["TRUST_X_REQUEST_ID"]).lower() == "true"
    assert env["LOG_FORMAT"] == "json"
    assert env["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/prometheus"
    raw = COMPOSE.read_text()
    for secret in ("SECRET_KEY", "ALLOWED_HOSTS", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
        assert f"${{{secret}:?set {secret}}}" in raw, f"{secret} must be required from the environment"
    command = " ".join(_as_list(web["command"]))
    assert command.index("migrate --noinput") < command.index("gunicorn -c deploy/gunicorn.conf.py")


def test_compose_worker_beat_and_nginx(compose):
    services = compose["services"]
    worker = " ".join(_as_list(services["worker"]["command"]))
    assert worker.endswith("exec celery -A linguaflex worker -l INFO --concurrency 2")
    assert "mkdir -p /tmp/prometheus" in worker  # its metrics directory exists, and starts empty
    assert services["beat"]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == ""
    beat = " ".join(_as_list(services["beat"]["command"]))
    assert beat == "celery -A linguaflex beat -l INFO --schedule /tmp/celerybeat-schedule"
    nginx = services["nginx"]
    assert nginx["image"] == "nginx:1.27"
    assert "8080:80" in nginx["ports"]
    mounted = [volume.split(":")[0] for volume in nginx["volumes"] if volume.endswith(":/etc/nginx/conf.d/default.conf:ro")]
    assert mounted and all((DEPLOY / path).resolve() == (DEPLOY / "nginx" / "compose.conf").resolve() for path in mounted)
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"


# --- Procfile -----------------------------------------------------------------------------------


def test_procfile_process_types():
    processes = {}
    for line in PROCFILE.read_text().splitlines():
        if line.strip():
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    assert processes == {
        "release": "python manage.py migrate --noinput",
        "web": "gunicorn -c deploy/gunicorn.conf.py",
        "worker": "celery -A linguaflex worker -l INFO",
        "beat": "celery -A linguaflex beat -l INFO",
    }


# --- systemd ------------------------------------------------------------------------------------


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((SYSTEMD / name).read_text())
    return parser


@pytest.mark.parametrize("name", SYSTEMD_UNITS)
def test_systemd_unit_sections(name):
    unit = _unit(name)
    for section in ("Unit", "Service", "Install"):
        assert unit.has_section(section), f"{name} has no [{section}]"
    assert unit["Service"].get("ExecStart", "").startswith("/srv/linguaflex/.venv/bin/")
    assert unit["Service"]["WorkingDirectory"] == "/srv/linguaflex"
    assert unit["Service"]["User"] == "linguaflex"
    assert unit["Service"]["EnvironmentFile"] == "/etc/linguaflex/env"
    assert unit["Service"]["NoNewPrivileges"] == "yes"
    assert unit["Service"]["ProtectSystem"] == "strict"


def test_systemd_web_template():
    text = (SYSTEMD / "linguaflex-web@.service").read_text()
    service = _unit("linguaflex-web@.service")["Service"]
    assert service["ExecStart"] == "/srv/linguaflex/.venv/bin/gunicorn -c deploy/gunicorn.conf.py"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillSignal"] == "SIGTERM"
    assert service["TimeoutStopSec"] == "40"
    assert service["Restart"] == "on-failure"
    assert service["RuntimeDirectory"] == "linguaflex-web-%i"
    assert "/run/linguaflex-web-%i" in service["ExecStartPre"]
    assert "ReadWritePaths" in service
    # configparser (strict=False) keeps the last of repeated keys: check the Environment= lines directly.
    assert "Environment=GUNICORN_BIND=127.0.0.1:%i" in text
    assert "Environment=PROMETHEUS_MULTIPROC_DIR=/run/linguaflex-web-%i" in text


def test_systemd_worker_warm_shutdown():
    service = _unit("linguaflex-worker.service")["Service"]
    assert "celery -A linguaflex worker" in service["ExecStart"]
    assert service["KillSignal"] == "SIGTERM"
    assert service["TimeoutStopSec"] == "600"


def test_systemd_single_beat_with_state_directory():
    text = (SYSTEMD / "linguaflex-beat.service").read_text()
    service = _unit("linguaflex-beat.service")["Service"]
    assert "celery -A linguaflex beat" in service["ExecStart"]
    assert "--schedule /var/lib/linguaflex/celerybeat-schedule" in service["ExecStart"]
    assert service["StateDirectory"] == "linguaflex"
    comments = " ".join(line for line in text.splitlines() if line.lstrip().startswith("#")).lower()
    assert "exactly one beat" in comments


def test_systemd_migrate_oneshot():
    text = (SYSTEMD / "linguaflex-migrate.service").read_text()
    assert _unit("linguaflex-migrate.service")["Service"]["Type"] == "oneshot"
    exec_starts = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    assert any("manage.py migrate --noinput" in line for line in exec_starts)
    assert any("manage.py collectstatic --noinput" in line for line in exec_starts)


# --- Prometheus ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alert_rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    groups = {group["name"]: group for group in document["groups"]}
    assert "linguaflex" in groups
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_prometheus_scrape_config():
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    web = jobs["linguaflex-web"]
    assert web["metrics_path"] == "/metrics/"
    assert web["authorization"]["credentials_file"] == "/etc/prometheus/linguaflex-metrics-token"
    assert {t for sc in web["static_configs"] for t in sc["targets"]} == {"127.0.0.1:8101", "127.0.0.1:8102"}
    worker_targets = {
        t
        for job in jobs.values()
        if job.get("metrics_path", "/metrics") == "/metrics"
        for sc in job["static_configs"]
        for t in sc["targets"]
    }
    assert "127.0.0.1:9808" in worker_targets


def test_alerts_present(alert_rules):
    names = [rule.get("alert") for rule in alert_rules]
    for name in ALERT_NAMES:
        assert name in names, f"alert {name} is missing"
    assert len(names) == len(set(names))


def test_alert_rules_have_expr_severity_summary(alert_rules):
    for rule in alert_rules:
        assert str(rule.get("expr", "")).strip(), rule
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule
        assert str(rule["annotations"]["summary"]).strip(), rule
        assert str(rule["annotations"].get("description", "")).strip(), rule


def test_alert_thresholds(alert_rules):
    rules = {rule["alert"]: rule for rule in alert_rules}
    expr = {name: " ".join(str(rule["expr"]).split()) for name, rule in rules.items()}
    assert 'linguaflex_payments_total{outcome="failed"}' in expr["PaymentFailureRateHigh"]
    assert expr["PaymentFailureRateHigh"].endswith("> 0.2")
    assert "histogram_quantile(0.95" in expr["WebhookLagHigh"] and expr["WebhookLagHigh"].endswith("> 60")
    assert expr["AppDown"] == 'up{job="linguaflex-web"} == 0'
    assert expr["LedgerCheckFailed"] == "linguaflex_ledger_check_ok == 0"
    assert {name: rules[name].get("for") for name in ("PaymentFailureRateHigh", "WebhookLagHigh", "AppDown")} == {
        "PaymentFailureRateHigh": "10m",
        "WebhookLagHigh": "10m",
        "AppDown": "2m",
    }


def test_alert_metrics_are_exported(alert_rules):
    used = set()
    for rule in alert_rules:
        used |= metric_families(str(rule["expr"]))
    assert used, "no linguaflex metrics found in the alert expressions"
    assert used <= EXPORTED, f"alerts use metrics the app does not export: {sorted(used - EXPORTED)}"


def test_metric_family_helper():
    assert metric_families("rate(linguaflex_webhook_lag_seconds_bucket[5m]) + linguaflex_payments_total") == {
        "linguaflex_webhook_lag_seconds",
        "linguaflex_payments_total",
    }


# --- Grafana ------------------------------------------------------------------------------------

PANEL_TYPES = ["timeseries", "stat", "gauge", "table", "bargauge", "heatmap", "text", "row", "piechart"]

DASHBOARD_SCHEMA = {
    "type": "object",
    "required": ["title", "uid", "schemaVersion", "panels", "templating"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "uid": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "templating": {
            "type": "object",
            "required": ["list"],
            "properties": {"list": {"type": "array", "items": {"type": "object", "required": ["name", "type"]}}},
        },
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type", "title", "gridPos", "datasource", "targets"],
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "type": {"enum": PANEL_TYPES},
                    "title": {"type": "string", "minLength": 1},
                    "gridPos": {
                        "type": "object",
                        "required": ["h", "w", "x", "y"],
                        "properties": {
                            "h": {"type": "integer", "minimum": 1},
                            "w": {"type": "integer", "minimum": 1, "maximum": 24},
                            "x": {"type": "integer", "minimum": 0, "maximum": 23},
                            "y": {"type": "integer", "minimum": 0},
                        },
                    },
                    "datasource": {
                        "type": "object",
                        "required": ["type", "uid"],
                        "properties": {"type": {"const": "prometheus"}, "uid": {"const": "${DS_PROMETHEUS}"}},
                    },
                    "targets": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["expr", "refId"],
                            "properties": {
                                "expr": {"type": "string", "minLength": 1},
                                "refId": {"type": "string", "minLength": 1},
                                "legendFormat": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_matches_schema(dashboard):
    jsonschema.validate(dashboard, DASHBOARD_SCHEMA)
    assert dashboard["title"] == "LinguaFlex"
    assert dashboard["uid"] == "linguaflex"
    assert dashboard["schemaVersion"] == 39


def test_dashboard_schema_rejects_a_bad_panel(dashboard):
    broken = json.loads(json.dumps(dashboard))
    broken["panels"][0]["gridPos"]["w"] = 25
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, DASHBOARD_SCHEMA)


def test_dashboard_datasource_variable(dashboard):
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"


def test_dashboard_panel_ids_layout_and_ref_ids(dashboard):
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), f"duplicate refId in {panel['title']}"


def test_dashboard_covers_the_metrics(dashboard):
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= metric_families(target["expr"])
    assert used <= EXPORTED, f"dashboard uses metrics the app does not export: {sorted(used - EXPORTED)}"
    assert EXPORTED - used <= {"linguaflex_ledger_check_timestamp_seconds"}


# --- nginx (compose) ----------------------------------------------------------------------------


def _nginx_directives() -> str:
    return "\n".join(line.split("#", 1)[0] for line in NGINX_COMPOSE.read_text().splitlines())


def test_nginx_compose_conf():
    conf = _nginx_directives()
    assert re.search(r"location\s*=\s*/metrics/\s*\{\s*return\s+404;\s*\}", conf)
    assert re.search(r"server\s+web:8000;", conf)
    assert re.search(r"client_max_body_size\s+64k;", conf)
    assert re.search(r"proxy_set_header\s+X-Request-ID\s+\$request_id;", conf)
    assert re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$proxy_add_x_forwarded_for;", conf)
    assert re.search(r'proxy_set_header\s+X-Request-Start\s+"t=\$\{msec\}";', conf)
    assert re.search(r"proxy_connect_timeout\s+5s;", conf)
    assert re.search(r"proxy_read_timeout\s+60s;", conf)
    assert "alias" not in conf and "/static/" not in conf
    assert conf.count("{") == conf.count("}")


def test_exported_is_exactly_what_the_app_exports():
    """The alerts and the dashboard are checked against EXPORTED; EXPORTED against the code (each
    metric's name as the code declares it; prometheus-client adds _total to a counter's)."""
    declared = set()
    for module in (ROOT / "linguaflex" / "metrics.py", ROOT / "stripe_payments" / "metrics.py"):
        declared |= set(re.findall(r'"(linguaflex_[a-z_]+)"', module.read_text()))

    assert {f"{name}_total" if f"{name}_total" in EXPORTED else name for name in declared} == set(EXPORTED)


def test_compose_nginx_is_healthy_only_when_the_app_answers_through_it(compose):
    check = " ".join(_as_list(compose["services"]["nginx"]["healthcheck"]["test"]))

    assert "http://127.0.0.1/health/" in check
