"""The API docs work offline (Swagger UI and ReDoc from the project's own static files), WhiteNoise
serves the static files under production settings, and ``GET /`` answers an index."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.core.management import call_command
from django.templatetags.static import static
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
CDN_HOSTS = ("cdn.jsdelivr", "unpkg", "cdnjs", "fonts.googleapis", "fonts.gstatic")
PAGES = ["/", "/api/docs/", "/api/redoc/", "/admin/login/"]


class _Assets(HTMLParser):
    """Every ``<script src>`` and ``<link href>`` of a page."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.urls.append(attributes["src"])
        elif tag == "link" and attributes.get("href"):
            self.urls.append(attributes["href"])


def assets_of(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


def fetch(client: Client, url: str, **extra):
    """GET ``url`` and return (response, body), reading and closing a streamed file response."""
    response = client.get(url, **extra)
    if response.streaming:
        body = b"".join(response.streaming_content)
        response.close()
    else:
        body = response.content
    return response, body


# --- /api/docs/ and /api/redoc/ need no network ------------------------------------------------
@pytest.fixture
def static_client():
    """A browser-like client. Tests run no collectstatic: WhiteNoise finds the files in the apps
    (WHITENOISE_USE_FINDERS outside production)."""
    return Client()


@pytest.mark.parametrize("page", PAGES)
def test_no_page_references_a_cdn(static_client, page):
    response, body = fetch(static_client, page, HTTP_ACCEPT="text/html")
    html = body.decode()

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    for host in CDN_HOSTS:
        assert host not in html, host


@pytest.mark.parametrize("page, expected", [
    ("/api/docs/", {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png"}),
    ("/api/redoc/", {"redoc.standalone.js"}),
])
def test_api_docs_load_every_script_and_stylesheet_from_the_projects_static_files(static_client, page, expected):
    _, body = fetch(static_client, page)
    urls = assets_of(body.decode())

    assert expected <= {url.rsplit("/", 1)[-1] for url in urls}
    for url in urls:
        assert url.startswith("/static/"), url
        asset, content = fetch(static_client, url)
        assert asset.status_code == 200, url
        assert content, url


def test_swagger_ui_does_not_call_the_public_validator(static_client):
    _, body = fetch(static_client, "/api/docs/")

    assert re.search(r'"validatorUrl":\s*null', body.decode())


def test_redoc_points_at_the_schema(static_client):
    _, body = fetch(static_client, "/api/redoc/")

    assert 'spec-url="/api/schema/"' in body.decode()


@pytest.mark.parametrize("url", ["/", "/api/redoc/"])
def test_index_and_redoc_are_public_and_ignore_a_stale_authorization_header(api_client, url):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer stale.or.garbage")

    assert api_client.get(url).status_code == 200


# --- production: WhiteNoise serves what collectstatic wrote, through the manifest ----------------
MANIFEST_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


def production_static(root: Path) -> override_settings:
    """Production's static set-up (settings/production.py): the manifest storage, and WhiteNoise
    serving only what collectstatic wrote into ``root``."""
    return override_settings(STATIC_ROOT=root, STORAGES=MANIFEST_STORAGES, DEBUG=False,
                             WHITENOISE_USE_FINDERS=False, WHITENOISE_AUTOREFRESH=False)


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """A STATIC_ROOT filled by ``collectstatic``, once for the module."""
    root = tmp_path_factory.mktemp("staticfiles")
    with production_static(root):
        call_command("collectstatic", interactive=False, verbosity=0)
    return root


@pytest.fixture
def production_client(collected):
    """WhiteNoise reads its settings when a client builds its middleware, on its first request."""
    with production_static(collected):
        yield Client()


def test_production_settings_serve_collected_files_through_whitenoise():
    code = ("import json, django; django.setup(); from django.conf import settings as s; print(json.dumps("
            "[s.STORAGES['staticfiles']['BACKEND'], s.MIDDLEWARE, s.WHITENOISE_USE_FINDERS, s.WHITENOISE_AUTOREFRESH]))")
    env = {key: value for key, value in os.environ.items() if key not in {"STRIPE_LOG", "THROTTLE_RATES"}}
    env.update(DJANGO_SETTINGS_MODULE="linguaflex.settings.production", SECRET_KEY="prod-test-" + "k3y" * 20,
               DEBUG="false", ALLOWED_HOSTS="api.linguaflex.example")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    backend, middleware, use_finders, autorefresh = json.loads(result.stdout)

    assert backend == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert (use_finders, autorefresh) == (False, False)
    assert middleware[:5] == ["linguaflex.request_id.RequestIdMiddleware", "linguaflex.metrics.MetricsMiddleware",
                              "linguaflex.after_response.AfterResponseMiddleware",
                              "linguaflex.deadline.RequestDeadlineMiddleware",
                              "linguaflex.middleware.CardDataInQueryStringMiddleware"]
    security = middleware.index("django.middleware.security.SecurityMiddleware")
    assert middleware[security + 1] == "whitenoise.middleware.WhiteNoiseMiddleware"


def test_tests_and_development_keep_the_default_storage(settings):
    assert settings.STORAGES["staticfiles"]["BACKEND"] == "django.contrib.staticfiles.storage.StaticFilesStorage"


@pytest.mark.parametrize("path", ["admin/css/base.css", "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
                                  "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"])
def test_whitenoise_serves_collected_static_files(production_client, collected, path):
    plain, plain_body = fetch(production_client, f"/static/{path}")
    hashed_url = static(path)
    hashed, hashed_body = fetch(production_client, hashed_url, HTTP_ACCEPT_ENCODING="gzip")

    assert (collected / "staticfiles.json").is_file()
    assert plain.status_code == 200
    assert plain_body == (collected / path).read_bytes()
    assert hashed_url != f"/static/{path}"  # the manifest's content-hashed name
    assert hashed.status_code == 200
    assert hashed["Content-Encoding"] == "gzip"
    assert "immutable" in hashed["Cache-Control"]
    assert hashed_body


def test_admin_login_page_links_its_hashed_stylesheets_and_they_are_served(production_client):
    response, body = fetch(production_client, "/admin/login/")
    stylesheets = [url for url in assets_of(body.decode()) if url.endswith(".css")]

    assert response.status_code == 200
    assert stylesheets
    for url in stylesheets:
        assert re.search(r"\.[0-9a-f]{12}\.css$", url), url
        assert fetch(production_client, url)[0].status_code == 200, url


def test_api_docs_scripts_are_served_under_the_manifest_storage(production_client):
    for page in ("/api/docs/", "/api/redoc/"):
        _, body = fetch(production_client, page)
        scripts = [url for url in assets_of(body.decode()) if url.endswith(".js")]
        assert scripts, page
        for url in scripts:
            assert fetch(production_client, url)[0].status_code == 200, url


# --- GET / ---------------------------------------------------------------------------------------
INDEX = {"name": "LinguaFlex API", "version": "1.0.0", "docs": "/api/docs/", "redoc": "/api/redoc/",
         "schema": "/api/schema/", "health": "/health/", "admin": "/admin/"}


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_index_answers_json_by_default(api_client, accept):
    extra = {"HTTP_ACCEPT": accept} if accept else {}
    response = api_client.get("/", **extra)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == INDEX


def test_index_answers_a_self_contained_html_page_to_a_browser(api_client):
    browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
    response = api_client.get("/", HTTP_ACCEPT=browser_accept)
    html = response.content.decode()

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "<style>" in html
    assert assets_of(html) == []  # no external script or stylesheet
    assert "<script" not in html
    for link in ("/api/docs/", "/api/redoc/", "/api/schema/", "/health/", "/admin/"):
        assert f'href="{link}"' in html, link


def test_index_is_left_out_of_the_schema(api_client):
    paths = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    assert "/" not in paths
    assert "/api/redoc/" not in paths
