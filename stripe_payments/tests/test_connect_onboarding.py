"""Teachers' Connect onboarding (services/connect.py, views/connect.py): the account created once,
fresh links, the roles, status before and after onboarding through the emulator's hosted page, the
public refresh and return URLs and their signed token, and ``account.updated`` under replay and
reordering, against the in-process Stripe emulator."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from stripe_payments import gateway
from stripe_payments.models import ConnectedAccount, WebhookEvent, WebhookEventStatus
from stripe_payments.services import connect

from .conftest import deliver, error_of, stripe_calls

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]

ONBOARD_URL = "/stripe-payments/connect/onboard/"
STATUS_URL = "/stripe-payments/connect/status/"
REFRESH_PATH = "/stripe-payments/connect/refresh/"
RETURN_PATH = "/stripe-payments/connect/return/"
PUBLIC_BASE = "https://app.linguaflex.test"


@pytest.fixture(autouse=True)
def _public_base(settings):
    settings.PUBLIC_BASE_URL = PUBLIC_BASE


@pytest.fixture
def teacher_client(client_for, teacher):
    return client_for(teacher)


@pytest.fixture
def onboard(teacher_client, stripe_emulator):
    """POST connect/onboard as the teacher; its 200 body."""

    def post() -> dict:
        response = teacher_client.post(ONBOARD_URL)
        assert response.status_code == 200, response.content
        return response.json()

    return post


def emulator_accounts(emulator) -> list[dict]:
    st = emulator.state
    with st.lock:
        return [obj for obj in st.objects.values() if obj.get("object") == "account"]


def link_urls(emulator, onboarding_url: str) -> tuple[str, str]:
    """The (refresh_url, return_url) Stripe was given for an onboarding link."""
    token = urlsplit(onboarding_url).path.rsplit("/", 1)[-1]
    link = emulator.state.account_links[token]
    return link["refresh_url"], link["return_url"]


def local(url: str) -> str:
    """Our URL as the Django test client requests it: path and query."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_BASE
    return f"{parts.path}?{parts.query}"


def complete_on_the_page(onboarding_url: str) -> str:
    """What the teacher's browser does: open the link, press Complete, follow Stripe's 302 back.
    Returns the return URL Stripe redirected to."""
    page = requests.get(onboarding_url, allow_redirects=False, timeout=5)
    assert page.status_code == 200 and "Complete onboarding" in page.text
    done = requests.post(f"{onboarding_url}/complete", allow_redirects=False, timeout=5)
    assert done.status_code == 302
    return done.headers["Location"]


# --- onboarding: the account once, a fresh link every call --------------------------------------------
def test_onboarding_creates_the_account_once_and_answers_a_fresh_link_each_call(onboard, teacher, stripe_emulator):
    first, second = onboard(), onboard()

    assert set(first) == {"account_id", "onboarding_url"}
    assert first["account_id"] == second["account_id"]
    assert first["account_id"].startswith("acct_")
    assert first["onboarding_url"] != second["onboarding_url"]
    assert ConnectedAccount.objects.get().teacher == teacher
    [account] = emulator_accounts(stripe_emulator)
    assert account["id"] == first["account_id"]
    assert account["controller"]["stripe_dashboard"]["type"] == "express"
    assert account["controller"]["fees"]["payer"] in ("application", "application_express")  # Stripe's name
    assert account["controller"]["losses"]["payments"] == "application"
    assert set(account["capabilities"]) == {"card_payments", "transfers"}
    assert set(stripe_emulator.state.capability_requested_at[account["id"]]) == {"card_payments", "transfers"}
    assert account["metadata"] == {"teacher_id": str(teacher.pk)}
    assert len(stripe_calls(stripe_emulator, "POST", "/v1/accounts")) == 1
    assert len(stripe_calls(stripe_emulator, "POST", "/v1/account_links")) == 2


def test_the_account_creation_uses_the_teachers_stable_stripe_idempotency_key(onboard, teacher, stripe_emulator):
    from stripe_payments import keys

    onboard()
    [create] = stripe_calls(stripe_emulator, "POST", "/v1/accounts")
    assert create["idempotency_key"] == keys.user_scoped_key(teacher, "connect-account", "create")


def test_the_links_come_back_to_this_apis_refresh_and_return_urls_with_one_signed_token(onboard, stripe_emulator):
    body = onboard()
    refresh_url, return_url = link_urls(stripe_emulator, body["onboarding_url"])

    assert refresh_url.startswith(f"{PUBLIC_BASE}{REFRESH_PATH}?token=")
    assert return_url.startswith(f"{PUBLIC_BASE}{RETURN_PATH}?token=")
    [refresh_token] = parse_qs(urlsplit(refresh_url).query)["token"]
    [return_token] = parse_qs(urlsplit(return_url).query)["token"]
    assert refresh_token == return_token
    assert connect.account_for_token(refresh_token) == ConnectedAccount.objects.get()


def test_a_concurrent_first_call_that_recorded_the_account_first_is_used(teacher, stripe_emulator, monkeypatch):
    real_create = gateway.account_create

    def create_and_lose_the_race(**kwargs):
        result = real_create(**kwargs)
        ConnectedAccount.objects.create(teacher=teacher, stripe_account_id=result.id)  # the twin's row
        return result

    monkeypatch.setattr(gateway, "account_create", create_and_lose_the_race)
    result = connect.connect_onboard(teacher=teacher, base_url=PUBLIC_BASE)

    assert ConnectedAccount.objects.get().stripe_account_id == result.account_id
    assert len(emulator_accounts(stripe_emulator)) == 1


# --- roles ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["student", "admin"])
@pytest.mark.parametrize(("method", "url"), [("post", ONBOARD_URL), ("get", STATUS_URL)])
def test_only_teachers_onboard_or_read_the_status(role, method, url, client_for, student, admin_user,
                                                  stripe_emulator):
    user = {"student": student, "admin": admin_user}[role]
    response = getattr(client_for(user), method)(url)

    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"
    assert not ConnectedAccount.objects.exists()
    assert stripe_calls(stripe_emulator) == []


@pytest.mark.parametrize(("method", "url"), [("post", ONBOARD_URL), ("get", STATUS_URL)])
def test_anonymous_callers_get_401(method, url, client_for, stripe_emulator):
    response = getattr(client_for(None), method)(url)

    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"


# --- status, before and after onboarding through the hosted page ------------------------------------
def test_a_teacher_who_has_not_onboarded_gets_200_with_a_null_account(teacher_client, stripe_emulator):
    response = teacher_client.get(STATUS_URL)

    assert response.status_code == 200
    assert response.json() == {"account_id": None, "charges_enabled": False, "payouts_enabled": False,
                               "requirements_due": []}
    assert stripe_calls(stripe_emulator) == []


def test_status_before_and_after_completing_onboarding_on_stripes_page(onboard, teacher_client, client_for,
                                                                      stripe_emulator):
    body = onboard()
    before = teacher_client.get(STATUS_URL).json()
    assert (before["account_id"], before["charges_enabled"], before["payouts_enabled"]) == (
        body["account_id"], False, False)
    assert before["requirements_due"]  # Stripe needs the teacher's details

    return_url = complete_on_the_page(body["onboarding_url"])
    assert return_url == link_urls(stripe_emulator, body["onboarding_url"])[1]
    page = client_for(None).get(local(return_url))

    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert 'data-outcome="complete"' in page.content.decode()
    assert page["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in page["Content-Security-Policy"]
    assert "no-store" in page["Cache-Control"]
    after = teacher_client.get(STATUS_URL).json()
    assert after == {"account_id": body["account_id"], "charges_enabled": True, "payouts_enabled": True,
                     "requirements_due": []}
    account = ConnectedAccount.objects.get()
    assert account.details_submitted and account.transfers_active


def test_the_return_url_answers_json_when_asked(onboard, client_for, stripe_emulator):
    body = onboard()
    return_url = complete_on_the_page(body["onboarding_url"])

    response = client_for(None).get(local(return_url), HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert response.json() == {"account_id": body["account_id"], "onboarding_complete": True,
                               "details_submitted": True, "charges_enabled": True, "payouts_enabled": True,
                               "requirements_due": []}


def test_returning_before_finishing_says_onboarding_is_not_finished(onboard, client_for, stripe_emulator):
    body = onboard()
    _, return_url = link_urls(stripe_emulator, body["onboarding_url"])

    page = client_for(None).get(local(return_url))
    as_json = client_for(None).get(local(return_url), HTTP_ACCEPT="application/json").json()

    assert page.status_code == 200
    assert 'data-outcome="pending"' in page.content.decode()
    assert as_json["onboarding_complete"] is False and as_json["requirements_due"]


def test_the_public_urls_ignore_a_stale_authorization_header(onboard, stripe_emulator, api_client):
    body = onboard()
    _, return_url = link_urls(stripe_emulator, body["onboarding_url"])
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")

    assert api_client.get(local(return_url)).status_code == 200


# --- refresh: a used or expired link comes back for a new one ---------------------------------------
def test_a_used_link_sends_the_browser_to_refresh_which_redirects_to_a_new_working_link(
        onboard, client_for, teacher_client, stripe_emulator):
    body = onboard()
    refresh_url, _ = link_urls(stripe_emulator, body["onboarding_url"])
    requests.post(f"{body['onboarding_url']}/complete", allow_redirects=False, timeout=5)
    stripe_emulator.restrict_account(body["account_id"])  # Stripe needs more: the teacher goes again

    used = requests.get(body["onboarding_url"], allow_redirects=False, timeout=5)
    assert used.status_code == 302 and used.headers["Location"] == refresh_url
    response = client_for(None).get(local(refresh_url))

    assert response.status_code == 302
    assert response["Referrer-Policy"] == "no-referrer"
    new_link = response["Location"]
    assert new_link != body["onboarding_url"]
    assert new_link.startswith(f"{stripe_emulator.base_url}/_emulator/connect/onboard/")
    return_url = complete_on_the_page(new_link)
    assert client_for(None).get(local(return_url)).status_code == 200
    assert teacher_client.get(STATUS_URL).json()["payouts_enabled"] is True


def test_an_expired_link_sends_the_browser_to_refresh(onboard, stripe_emulator):
    body = onboard()
    refresh_url, _ = link_urls(stripe_emulator, body["onboarding_url"])
    start = time.time()
    stripe_emulator.set_clock(lambda: start + 301)
    try:
        expired = requests.get(body["onboarding_url"], allow_redirects=False, timeout=5)
    finally:
        stripe_emulator.set_clock(time.time)

    assert expired.status_code == 302 and expired.headers["Location"] == refresh_url


def test_stripe_out_of_reach_on_return_is_the_unavailable_page_or_the_5xx_envelope(onboard, client_for,
                                                                                    stripe_emulator):
    body = onboard()
    _, return_url = link_urls(stripe_emulator, body["onboarding_url"])
    stripe_emulator.arm_fault("GET", f"/v1/accounts/{body['account_id']}", "error_500", count=10)

    page = client_for(None).get(local(return_url))
    as_json = client_for(None).get(local(return_url), HTTP_ACCEPT="application/json")

    assert page.status_code == 502
    assert 'data-outcome="unavailable"' in page.content.decode()
    assert as_json.status_code == 502 and error_of(as_json)["code"] == "payment_provider_error"


# --- the token -----------------------------------------------------------------------------------
def _tampered(token: str) -> str:
    value, _, signature = token.rpartition(":")
    return f"{value}:{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


@pytest.mark.parametrize("path", [REFRESH_PATH, RETURN_PATH])
def test_a_tampered_token_is_refused_with_the_bad_link_page_or_the_envelope(path, onboard, client_for,
                                                                            stripe_emulator):
    body = onboard()
    refresh_url, _ = link_urls(stripe_emulator, body["onboarding_url"])
    [token] = parse_qs(urlsplit(refresh_url).query)["token"]
    stripe_emulator.clear_requests()

    page = client_for(None).get(path, {"token": _tampered(token)})
    as_json = client_for(None).get(path, {"token": _tampered(token)}, HTTP_ACCEPT="application/json")
    missing = client_for(None).get(path, HTTP_ACCEPT="application/json")

    assert page.status_code == 400
    assert page["Content-Type"].startswith("text/html")
    assert 'data-outcome="bad_link"' in page.content.decode()
    assert as_json.status_code == 400
    error = error_of(as_json)
    assert error["code"] == "invalid_request" and "token" in error["fields"]
    assert missing.status_code == 400
    assert stripe_calls(stripe_emulator) == []


def test_a_token_older_than_its_max_age_is_refused(onboard, client_for, stripe_emulator, monkeypatch):
    body = onboard()
    refresh_url, return_url = link_urls(stripe_emulator, body["onboarding_url"])
    monkeypatch.setattr(connect, "LINK_TOKEN_MAX_AGE", timedelta(seconds=-1))

    assert client_for(None).get(local(refresh_url)).status_code == 400
    assert client_for(None).get(local(return_url)).status_code == 400


def test_a_token_of_an_account_row_that_no_longer_matches_is_refused(onboard, client_for, stripe_emulator):
    body = onboard()
    _, return_url = link_urls(stripe_emulator, body["onboarding_url"])
    ConnectedAccount.objects.update(stripe_account_id="acct_after_a_database_reset")

    assert client_for(None).get(local(return_url)).status_code == 400


# --- account.updated: replays and reordering converge on Stripe's current state ------------------------
def _state(account: ConnectedAccount) -> tuple:
    account.refresh_from_db()
    return (account.charges_enabled, account.payouts_enabled, account.details_submitted, account.transfers_active,
            account.requirements_due)


def _stripe_state(account_id: str) -> tuple:
    current = gateway.account_retrieve(account_id)
    return (current.charges_enabled, current.payouts_enabled, current.details_submitted, current.transfers_active,
            current.requirements_due)


def test_account_updated_syncs_the_account_from_stripe(onboard, client, stripe_emulator):
    body = onboard()
    stripe_emulator.complete_onboarding(body["account_id"])
    event = stripe_emulator.events("account.updated")[-1]

    deliver(client, event)

    account = ConnectedAccount.objects.get()
    assert _state(account) == (True, True, True, True, [])
    assert account.synced_at == event["created"]
    assert WebhookEvent.objects.get(stripe_event_id=event["id"]).status == WebhookEventStatus.PROCESSED


def test_replayed_and_reordered_account_events_end_in_stripes_current_state(onboard, client, stripe_emulator):
    body = onboard()
    stripe_emulator.complete_onboarding(body["account_id"])
    stripe_emulator.restrict_account(body["account_id"])
    completed, restricted = stripe_emulator.events("account.updated")[-2:]

    deliver(client, restricted)
    deliver(client, completed)  # older, and late: its copy says onboarding is complete
    deliver(client, restricted)  # the same event again
    deliver(client, completed)

    account = ConnectedAccount.objects.get()
    assert _state(account) == _stripe_state(body["account_id"])
    assert account.transfers_active is False and account.payouts_enabled is False
    assert "individual.verification.document" in account.requirements_due
    assert account.synced_at == max(completed["created"], restricted["created"])
    assert WebhookEvent.objects.filter(type="account.updated").count() == 2


def test_the_sync_service_converges_whatever_the_order_of_event_times(onboard, stripe_emulator):
    body = onboard()
    stripe_emulator.complete_onboarding(body["account_id"])

    connect.account_sync(account_id=body["account_id"], event_created=2000)
    connect.account_sync(account_id=body["account_id"], event_created=1000)  # older, after
    account = connect.account_sync(account_id=body["account_id"], event_created=2000)  # replay

    assert _state(account) == _stripe_state(body["account_id"]) == (True, True, True, True, [])
    assert account.synced_at == 2000


def test_a_restricted_account_loses_transfers_after_the_webhook(onboard, client, stripe_emulator):
    body = onboard()
    stripe_emulator.complete_onboarding(body["account_id"])
    deliver(client, stripe_emulator.events("account.updated")[-1])
    assert ConnectedAccount.objects.get().transfers_active is True

    stripe_emulator.restrict_account(body["account_id"])
    deliver(client, stripe_emulator.events("account.updated")[-1])

    account = ConnectedAccount.objects.get()
    assert (account.transfers_active, account.charges_enabled, account.payouts_enabled) == (False, False, False)
    assert account.can_receive_transfers is False


def test_an_account_deleted_at_stripe_can_receive_nothing_and_its_event_does_not_fail(onboard, client,
                                                                                        stripe_emulator):
    body = onboard()
    stripe_emulator.complete_onboarding(body["account_id"])
    event = stripe_emulator.events("account.updated")[-1]
    deliver(client, event)
    assert ConnectedAccount.objects.get().transfers_active is True
    stripe_emulator.restrict_account(body["account_id"])
    restricted = stripe_emulator.events("account.updated")[-1]  # the row is behind it: re-read
    with stripe_emulator.state.lock:  # gone at Stripe
        del stripe_emulator.state.objects[body["account_id"]]
    stripe_emulator.clear_requests()
    assert deliver(client, restricted)["status"] == "processed"
    assert [r["path"] for r in stripe_calls(stripe_emulator)] == [f"/v1/accounts/{body['account_id']}"]
    account = ConnectedAccount.objects.get()
    assert (account.transfers_active, account.charges_enabled, account.payouts_enabled) == (False, False, False)


def test_an_account_that_is_not_a_teachers_here_is_ignored_without_a_stripe_call(client, stripe_emulator):
    event = {"id": "evt_foreign_account", "object": "event", "type": "account.updated", "created": int(time.time()),
             "livemode": False, "data": {"object": {"id": "acct_someone_else", "object": "account"}}}

    deliver(client, event)

    assert connect.account_sync(account_id="acct_someone_else") is None
    assert WebhookEvent.objects.get().status == WebhookEventStatus.PROCESSED
    assert not ConnectedAccount.objects.exists()
    assert stripe_calls(stripe_emulator) == []


# --- the schema ----------------------------------------------------------------------------------
def test_the_schema_documents_the_connect_endpoints(api_client):
    document = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = document["paths"]

    assert set(paths[ONBOARD_URL]["post"]["responses"]) >= {"200", "400", "401", "403", "429", "502", "503", "504"}
    assert set(paths[STATUS_URL]["get"]["responses"]) >= {"200", "401", "403"}
    assert set(paths[REFRESH_PATH]["get"]["responses"]) >= {"302", "400", "502"}
    returned = paths[RETURN_PATH]["get"]["responses"]
    assert set(returned) >= {"200", "400", "502"}
    assert set(returned["200"]["content"]) == {"application/json", "text/html"}
    assert paths[RETURN_PATH]["get"]["security"] == paths[REFRESH_PATH]["get"]["security"] == [{}]  # public
    status_schema = document["components"]["schemas"]["ConnectStatusOutput"]
    assert status_schema["properties"]["account_id"].get("nullable") is True
