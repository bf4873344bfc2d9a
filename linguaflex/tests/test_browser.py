"""In a real browser, with no network: the API docs list every operation, the admin under gunicorn
with the production settings is styled and shows dollar amounts, and 3-D Secure on the emulator's
page ends on the app's styled return page, under gunicorn and under ``make run`` on another port.

Headless Chromium from Debian's packages (``apt-get install chromium chromium-driver``) through
Selenium; skipped with that reason where they are absent, a failure under ``CI=true``. The servers
and the browser are described in ``browser_stack.py``. Every page's requests are read from the
browser's performance log: none may leave the servers under test.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from linguaflex.testing.fixtures import require_service

from . import browser_stack as bs

pytestmark = pytest.mark.browser

WAIT = 30  # seconds for a page to render
DOLLARS = re.compile(r"\$\d[\d,]*\.\d\d")
EXTERNAL = ["https://cdn.jsdelivr.net/npm/swagger-ui-dist/swagger-ui.css", "https://unpkg.com/redoc/",
            "https://fonts.googleapis.com/css?family=Montserrat", "http://93.184.215.14/"]


# --- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workdir():
    require_service("headless Chromium", bs.browser_missing() is None,
                    f"{bs.browser_missing()}: {bs.HOW_TO_INSTALL}")
    path = Path(tempfile.mkdtemp(prefix="linguaflex-browser-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def template_db(workdir):
    """A database as ``make run`` leaves it (migrate + load_demo_data), copied for each server."""
    path = workdir / "template.sqlite3"
    processes = bs.Processes(workdir)
    try:
        bs.migrated_database(path, processes)
    finally:
        processes.stop()
    return path


@pytest.fixture(scope="module")
def stack(workdir, template_db):
    tmp = workdir / "production"
    tmp.mkdir()
    stack = bs.ProductionStack(template_db, tmp)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def chromium(workdir):
    profile = workdir / "chromium-profile"
    profile.mkdir()
    driver = bs.chromium(profile)
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium):
    """The module's Chromium, with its logs drained and no cookies, so a test sees only its own requests."""
    chromium.get("about:blank")
    # Every site's cookies: WebDriver's delete_all_cookies() only clears the current page's (none
    # on about:blank), which left one test's admin session to the next.
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
    bs.requested_urls(chromium)
    chromium.get_log("browser")
    return chromium


def wait_for(driver, condition, message: str, timeout: float = WAIT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition, message)


def css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def admin_login(browser, base_url: str) -> None:
    """Log in to the Django admin as the demo admin through its login form."""
    browser.get(f"{base_url}/admin/")
    wait_for(browser, lambda d: css(d, "#id_username"), "no admin login form")
    css(browser, "#id_username")[0].send_keys(bs.ADMIN)
    css(browser, "#id_password")[0].send_keys(bs.DEMO_PASSWORD)
    css(browser, "#login-form [type=submit]")[0].click()
    wait_for(browser, lambda d: css(d, "#user-tools"), "not logged in to the admin (secure cookies over http?)")


def assert_offline(driver, *origins: str) -> list[str]:
    """Every request since the last check went to one of ``origins``; returns them."""
    urls = bs.requested_urls(driver)
    assert urls, "the performance log recorded no request at all"
    assert bs.outside(urls, *origins) == [], "requests left the servers under test"
    return urls


# --- the browser really has no network ---------------------------------------------------------------
def test_chromium_reaches_loopback_and_nothing_else(stack, browser):
    from selenium.common.exceptions import WebDriverException

    for url in EXTERNAL:
        with pytest.raises(WebDriverException, match=r"ERR_(PROXY_CONNECTION_FAILED|NAME_NOT_RESOLVED)"):
            browser.get(url)
    browser.get(f"{stack.base_url}/health/")
    assert '"ok"' in browser.page_source
    # From a page's own scripts, too.
    fetched = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all(arguments[0].map(u => fetch(u, {mode: 'no-cors'}).then(() => 'reached ' + u, () => 'failed')))"
        ".then(done);", EXTERNAL)
    assert fetched == ["failed"] * len(EXTERNAL)


# --- /api/docs/ and /api/redoc/ ------------------------------------------------------------------------
def test_swagger_ui_lists_every_operation_offline(stack, browser):
    operations = bs.schema_operations(stack.base_url)
    browser.get(f"{stack.base_url}/api/docs/")
    wait_for(browser, lambda d: len(css(d, ".opblock")) >= len(operations),
             f"Swagger UI did not render {len(operations)} operations")

    listed = {(block.find_element("css selector", ".opblock-summary-method").text.strip().upper(),
               block.find_element("css selector", ".opblock-summary-path").get_attribute("data-path"))
              for block in css(browser, ".opblock")}
    assert listed == set(operations)
    assert ("POST", "/stripe-payments/process-payment/") in listed
    assert bs.console_errors(browser) == []
    urls = assert_offline(browser, stack.base_url)
    assert any("/static/drf_spectacular_sidecar/swagger-ui-dist/" in url for url in urls), urls


def test_redoc_lists_every_operation_offline(stack, browser):
    operations = bs.schema_operations(stack.base_url)
    browser.get(f"{stack.base_url}/api/redoc/")
    wait_for(browser, lambda d: len(css(d, "[data-section-id*='operation/']")) >= len(operations),
             f"ReDoc did not render {len(operations)} operations")

    sections = {element.get_attribute("data-section-id") for element in css(browser, "[data-section-id*='operation/']")}
    rendered = {section.rsplit("operation/", 1)[1] for section in sections}
    assert rendered == set(operations.values())
    process = operations[("POST", "/stripe-payments/process-payment/")]
    menu = css(browser, f"[data-item-id$='operation/{process}']")
    assert menu and menu[0].get_attribute("textContent").strip(), "process-payment missing from ReDoc's menu"
    assert "/stripe-payments/process-payment/" in browser.find_element("tag name", "body").get_attribute("textContent")
    assert bs.console_errors(browser) == []
    urls = assert_offline(browser, stack.base_url)
    assert any("/static/drf_spectacular_sidecar/redoc/" in url for url in urls), urls


# --- the admin under gunicorn, production settings -------------------------------------------------------
def test_admin_logs_in_styled_and_shows_dollar_amounts(stack, browser):
    student = bs.api_token(stack.base_url, bs.STUDENT)
    gig = bs.demo_gig(stack.base_url, student)
    paid = bs.process_payment(stack.base_url, student, gig["id"], bs.CARD_OK)
    assert paid.status_code == 200, paid.text

    admin_login(browser, stack.base_url)
    assert_styled_admin(browser)

    browser.get(f"{stack.base_url}/admin/stripe_payments/payment/")
    wait_for(browser, lambda d: css(d, "#result_list"), "no payments changelist")
    assert_styled_admin(browser)
    rows = [row.text for row in css(browser, "#result_list tbody tr")]
    row = next((text for text in rows if text.split()[:1] == [str(paid.json()["payment_id"])]), None)
    assert row, rows
    assert DOLLARS.search(row), f"no dollar amount in the payment's changelist row: {row!r}"
    assert bs.console_errors(browser) == []
    assert_offline(browser, stack.base_url)


def assert_styled_admin(driver) -> None:
    sheets = driver.execute_script("return Array.from(document.styleSheets, s => s.href || '')")
    assert any(re.search(r"/static/admin/css/base\.[0-9a-f]{12}\.css$", href) for href in sheets), sheets
    loaded = driver.execute_script(
        "return Array.from(document.styleSheets).filter(s => (s.href || '').includes('/base.'))"
        ".map(s => s.cssRules.length)")
    assert loaded and loaded[0] > 0, "admin base.css has no rules"
    background = driver.execute_script("return getComputedStyle(document.querySelector('#header')).backgroundColor")
    assert background not in ("", "transparent", "rgba(0, 0, 0, 0)"), background


# --- 3-D Secure on the emulator's page ------------------------------------------------------------------
def three_d_secure(driver, base_url: str, emulator_url: str, button: str) -> dict:
    """Pay with the 3-D Secure card, open the emulator's page, press ``button``, wait for the return
    page; its #outcome element's attributes and the final URL."""
    student = bs.api_token(base_url, bs.STUDENT)
    gig = bs.demo_gig(base_url, student)
    response = bs.process_payment(base_url, student, gig["id"], bs.CARD_3DS)
    assert response.status_code == 402, response.text
    error = response.json()["error"]
    assert error["code"] == "authentication_required", error
    assert error["redirect_url"].startswith(f"{emulator_url}/_emulator/3ds/"), error

    driver.get(error["redirect_url"])
    wait_for(driver, lambda d: css(d, f"button#{button}"), f"no {button} button on the emulator's 3-D Secure page")
    css(driver, f"button#{button}")[0].click()
    wait_for(driver, lambda d: d.current_url.startswith(f"{base_url}/stripe-payments/payment-return/")
             and css(d, "#outcome"), "the browser did not come back to the payment return page")
    outcome = css(driver, "#outcome")[0]
    return {
        "url": driver.current_url,
        "payment_intent": error["payment_intent_id"],
        "outcome": outcome.get_attribute("data-outcome"),
        "status": outcome.get_attribute("data-status"),
        "styles": driver.execute_script("return document.querySelectorAll('style').length"),
        "requests": bs.requested_urls(driver),
        "errors": bs.console_errors(driver),
    }


def assert_return_page(seen: dict, base_url: str, emulator_url: str, outcome: str, status: str) -> None:
    """The return page for this payment intent says ``outcome`` and ``status``, is styled, and
    needed nothing but the app and the emulator (every property at once, so a failure shows all)."""
    assert parse_qs(urlsplit(seen["url"]).query)["payment_intent"] == [seen["payment_intent"]]
    assert {
        "data-outcome": seen["outcome"],
        "data-status": seen["status"],
        "has <style>": seen["styles"] >= 1,
        "console errors": seen["errors"],
        "requests elsewhere": bs.outside(seen["requests"], base_url, emulator_url),
    } == {
        "data-outcome": outcome,
        "data-status": status,
        "has <style>": True,
        "console errors": [],
        "requests elsewhere": [],
    }


def test_3ds_completed_on_the_emulator_page_returns_to_the_styled_success_page(stack, browser):
    seen = three_d_secure(browser, stack.base_url, stack.emulator_url, "complete")

    assert_return_page(seen, stack.base_url, stack.emulator_url, "success", "succeeded")


def test_3ds_failed_on_the_emulator_page_returns_to_the_styled_failure_page(stack, browser):
    seen = three_d_secure(browser, stack.base_url, stack.emulator_url, "fail")

    assert_return_page(seen, stack.base_url, stack.emulator_url, "failure", "failed")


# --- make run on another port -----------------------------------------------------------------------------
@pytest.fixture
def devserver(workdir, template_db):
    tmp = workdir / "devserver"
    tmp.mkdir()
    server = bs.DevServer(template_db, tmp)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_make_run_on_another_port_brings_3ds_back_to_that_port(devserver, browser):
    emulator_url = f"http://127.0.0.1:{devserver.emulator_port}"
    seen = three_d_secure(browser, devserver.base_url, emulator_url, "complete")

    assert urlsplit(seen["url"]).port == devserver.port
    assert_return_page(seen, devserver.base_url, emulator_url, "success", "succeeded")


# --- the admin's revenue page ------------------------------------------------------------------------------
def test_admin_opens_the_revenue_page_with_the_days_figures_and_a_chart(stack, browser):
    from datetime import datetime, timezone

    student = bs.api_token(stack.base_url, bs.STUDENT)
    gig = bs.demo_gig(stack.base_url, student)
    paid = bs.process_payment(stack.base_url, student, gig["id"], bs.CARD_OK)
    assert paid.status_code == 200, paid.text
    today = datetime.now(timezone.utc).date().isoformat()
    admin_login(browser, stack.base_url)

    browser.get(f"{stack.base_url}/admin/stripe_payments/ledgerentry/")
    wait_for(browser, lambda d: css(d, "#revenue-link"), "no link to the revenue page on the ledger's changelist")
    css(browser, "#revenue-link")[0].click()
    wait_for(browser, lambda d: css(d, "#revenue-table"), "no revenue table")
    assert browser.current_url.startswith(f"{stack.base_url}/admin/stripe_payments/revenue/")
    assert_styled_admin(browser)

    row = css(browser, f"#revenue-table tr[data-period='{today}']")
    assert row, f"no row for today ({today}) in the revenue table"
    cells = [cell.text for cell in row[0].find_elements("css selector", "td")]
    assert len(cells) == 6 and all(DOLLARS.search(cell) for cell in cells), cells

    def cents(text: str) -> int:
        return int(text.replace("$", "").replace(",", "").replace(".", ""))

    gross, fees = cents(cells[0]), cents(cells[1])
    assert gross >= paid.json()["amount_cents"], cells  # this payment and the module's earlier ones
    assert fees * 10 == gross, cells  # every payment of the module is a 50.00 lesson, none refunded
    svg = css(browser, "svg#revenue-chart")
    assert svg and svg[0].size["width"] > 0 and svg[0].size["height"] > 0
    assert css(browser, "svg#revenue-chart rect.gross") and css(browser, "svg#revenue-chart text")
    assert bs.console_errors(browser) == []
    assert_offline(browser, stack.base_url)
