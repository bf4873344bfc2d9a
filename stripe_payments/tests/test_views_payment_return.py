"""The 3-D Secure return page (GET /stripe-payments/payment-return/): for a browser, one small
self-contained page per outcome (success, failure, pending, a bad link, Stripe out of reach) with
the right status and what to do next; for JSON, the outcome or the contract's envelope, as before.

The page's hook for the browser tests is ``#outcome`` with ``data-status`` and ``data-outcome``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from django.test import RequestFactory

from bookings.models import Booking
from stripe_payments.models import Payment, PaymentStatus
from stripe_payments.services import payments as payment_services
from stripe_payments.views.payments import PaymentReturnView

from .conftest import RETURN_URL, THREE_DS, error_of, through_3ds_page

pytestmark = [pytest.mark.django_db]

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
# Anything that would make the page fetch or run something: it must need nothing but itself.
EXTERNAL = re.compile(r"<link|<script|<iframe|<img|\bsrc\s*=|@import|url\(|https?://", re.IGNORECASE)


class _Page(HTMLParser):
    """The parts of the page the tests read: #outcome's attributes, <style>s, <meta>s, the title, the text."""

    def __init__(self, html: str):
        super().__init__()
        self.outcome: dict | None = None
        self.styles = 0
        self.metas: list[dict] = []
        self.title = ""
        self.texts: list[str] = []
        self._in_title = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id") == "outcome":
            assert self.outcome is None, "more than one #outcome"
            self.outcome = attributes
        if tag == "style":
            self.styles += 1
        elif tag == "meta":
            self.metas.append(attributes)
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        self.texts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.texts).split())


def assert_page(response, status: int, outcome: str, data_status: str, *says: str) -> _Page:
    """``response`` is the return page, answered ``status``, saying ``outcome`` / ``data_status`` and
    each of ``says``; styled inline, readable on a phone, needing nothing from anywhere."""
    html = response.content.decode()
    page = _Page(html)
    assert response.status_code == status, (response.status_code, html[:300])
    assert response["Content-Type"].startswith("text/html")
    assert page.outcome is not None, "no #outcome"
    assert (page.outcome.get("data-outcome"), page.outcome.get("data-status")) == (outcome, data_status)
    assert page.styles == 1
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in page.metas
    assert page.title.startswith("LinguaFlex: ")
    assert EXTERNAL.findall(html) == []
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert "no-store" in response["Cache-Control"]
    for text in says:
        assert text in page.text, (text, page.text)
    return page


def browser_get(client, query: str | dict | None = None):
    if isinstance(query, str):
        return client.get(query, HTTP_ACCEPT=BROWSER_ACCEPT)
    return client.get(RETURN_URL, query or {}, HTTP_ACCEPT=BROWSER_ACCEPT)


def view_get(query: dict):
    """The view itself, without the middleware (see the 404 tests)."""
    request = RequestFactory().get(RETURN_URL, query, HTTP_ACCEPT=BROWSER_ACCEPT)
    return PaymentReturnView.as_view()(request).render()


def fake_payment_return(monkeypatch, status: str, message: str) -> None:
    """payment_return answers a payment in ``status`` (states the emulator cannot leave a payment in)."""
    outcome = SimpleNamespace(kind="payment", success=status == PaymentStatus.SUCCEEDED, status=status,
                              message=message, payment=SimpleNamespace(pk=1), booking_id=None)
    monkeypatch.setattr(payment_services, "payment_return", lambda **_: outcome)


@pytest.fixture
def three_ds_payment(stripe_emulator, pay) -> dict:
    """A payment waiting for 3-D Secure: process-payment's 402 error."""
    error = error_of(pay(THREE_DS))
    assert error["code"] == "authentication_required"
    return error


@pytest.fixture
def three_ds_card(stripe_emulator, add_card):
    """Adds a card that needs 3-D Secure; its 402 error."""

    def add(**extra) -> dict:
        error = error_of(add_card(THREE_DS, **extra))
        assert error["code"] == "authentication_required"
        return error

    return add


# --- payments ----------------------------------------------------------------------------------------------
@pytest.mark.emulator
def test_a_completed_3ds_payment_shows_the_booking_is_made_and_the_teacher_will_confirm(three_ds_payment,
                                                                                         api_client):
    page = browser_get(api_client, through_3ds_page(three_ds_payment["redirect_url"]))

    assert_page(page, 200, "success", "succeeded", "Payment complete", "your lesson is booked",
                "The teacher will now confirm the booking", "return to the LinguaFlex app")
    assert Booking.objects.filter(payment_id=three_ds_payment["payment_id"]).count() == 1


@pytest.mark.emulator
def test_a_failed_3ds_payment_says_the_card_was_not_charged_and_to_try_another_card(three_ds_payment,
                                                                                     api_client):
    page = browser_get(api_client, through_3ds_page(three_ds_payment["redirect_url"], succeed=False))
    message = api_client.get(RETURN_URL, {"payment_intent": three_ds_payment["payment_intent_id"],
                                          "format": "json"}).json()["message"]

    shown = assert_page(page, 200, "failure", "failed", "Payment not completed", "Your card was not charged.",
                        "try again with another card")
    assert " ".join(message.split()) in shown.text  # the services' student message, whatever it says
    assert not Booking.objects.exists()


@pytest.mark.emulator
def test_a_payment_whose_3ds_is_not_finished_says_it_was_not_charged_and_offers_a_reload(three_ds_payment,
                                                                                          api_client):
    page = browser_get(api_client, {"payment_intent": three_ds_payment["payment_intent_id"]})

    assert_page(page, 200, "pending", "requires_action", "Payment not finished", "has not been charged",
                "try the payment again", "Reload this page")
    assert 'href=""' in page.content.decode()  # the reload link is this very page
    assert Payment.objects.get(pk=three_ds_payment["payment_id"]).status == PaymentStatus.REQUIRES_ACTION


def test_a_processing_payment_says_not_to_pay_again_and_to_reload(monkeypatch, api_client):
    fake_payment_return(monkeypatch, PaymentStatus.PROCESSING, "The payment is still processing.")

    page = browser_get(api_client, {"payment_intent": "pi_processing"})

    assert_page(page, 200, "pending", "processing", "Payment in progress", "do not pay again",
                "Reload this page in a minute")


@pytest.mark.parametrize("status", [PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.DISPUTED])
def test_a_payment_charged_earlier_is_neither_a_success_nor_a_failure(monkeypatch, api_client, status):
    fake_payment_return(monkeypatch, status, f"The payment is {status}.")

    page = browser_get(api_client, {"payment_intent": "pi_old"})

    shown = assert_page(page, 200, "info", status, f"The payment is {status}.", "see this payment")
    assert "not charged" not in shown.text


def test_a_canceled_payment_is_a_failure(monkeypatch, api_client):
    fake_payment_return(monkeypatch, PaymentStatus.CANCELED, "The payment was canceled.")

    assert_page(browser_get(api_client, {"payment_intent": "pi_canceled"}), 200, "failure", "canceled",
                "Your card was not charged.", "The payment was canceled.")


def test_the_services_message_is_escaped(monkeypatch, api_client):
    fake_payment_return(monkeypatch, PaymentStatus.FAILED, '<script>alert("x")</script> & <b>bold</b>')

    html = browser_get(api_client, {"payment_intent": "pi_x"}).content.decode()

    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html


# --- cards -------------------------------------------------------------------------------------------------
@pytest.mark.emulator
def test_a_card_saved_after_3ds_says_it_can_now_pay(three_ds_card, api_client):
    page = browser_get(api_client, through_3ds_page(three_ds_card()["redirect_url"]))

    assert_page(page, 200, "success", "succeeded", "Card saved", "Your card is saved to your account.",
                "you can now pay with this card")


@pytest.mark.emulator
def test_a_card_verified_without_saving_says_so(three_ds_card, api_client):
    page = browser_get(api_client, through_3ds_page(three_ds_card(save_for_future=False)["redirect_url"]))

    assert_page(page, 200, "success", "succeeded", "Card verified", "It was not saved for later.",
                "Return to the LinguaFlex app to continue.")


@pytest.mark.emulator
def test_a_card_whose_3ds_failed_says_it_was_not_saved_and_to_try_again(three_ds_card, api_client):
    back = through_3ds_page(three_ds_card()["redirect_url"], succeed=False)

    page = browser_get(api_client, back)

    message = api_client.get(back, HTTP_ACCEPT="application/json").json()["message"]
    shown = assert_page(page, 200, "failure", "requires_payment_method", "Card not added",
                        "Your card was not saved, and nothing was charged.", "try again, or use another card")
    assert " ".join(message.split()) in shown.text


@pytest.mark.emulator
def test_a_card_whose_3ds_is_not_finished_offers_a_reload(three_ds_card, api_client):
    page = browser_get(api_client, {"setup_intent": three_ds_card()["setup_intent_id"]})

    assert_page(page, 200, "pending", "requires_action", "Card check not finished", "Reload this page in a minute")


# --- a bad link ---------------------------------------------------------------------------------------------
BAD_LINK_SAYS = ("This link is not valid or has expired.", "Return to the LinguaFlex app")


def test_a_link_without_parameters_is_the_bad_link_page_with_400(api_client):
    assert_page(browser_get(api_client), 400, "bad_link", "bad_link", *BAD_LINK_SAYS)


def test_a_browser_that_sends_no_accept_header_gets_the_page_too(api_client):
    assert_page(api_client.get(RETURN_URL), 400, "bad_link", "bad_link", *BAD_LINK_SAYS)


BAD_IDS = [
    pytest.param({"payment_intent": "pi_<script>alert(1)</script>"}, id="malformed-payment-intent"),
    pytest.param({"setup_intent": "seti_../../x"}, id="malformed-setup-intent"),
    pytest.param({"payment_intent": "pi_unknown"}, id="unknown-payment-intent"),
    pytest.param({"setup_intent": "seti_unknown", "setup_intent_client_secret": "seti_unknown_secret_x"},
                 id="unknown-setup-intent"),
]


# Checked twice: the view's own answer, and the whole stack's (JsonNotFoundMiddleware turns any other
# non-JSON 404 into the JSON 404, and lets this page through: response.json_404_exempt).
@pytest.mark.emulator
@pytest.mark.parametrize("query", BAD_IDS)
def test_a_malformed_or_unknown_id_is_the_bad_link_page_with_404(stripe_emulator, query):
    response = view_get(query)

    assert_page(response, 404, "bad_link", "bad_link", *BAD_LINK_SAYS)
    assert "alert" not in response.content.decode() and "unknown" not in response.content.decode()


@pytest.mark.emulator
@pytest.mark.parametrize("query", BAD_IDS)
def test_a_browser_gets_the_bad_link_page_with_404_through_the_middleware(stripe_emulator, api_client, query):
    assert_page(browser_get(api_client, query), 404, "bad_link", "bad_link", *BAD_LINK_SAYS)


# --- Stripe out of reach -------------------------------------------------------------------------------------
FAULTS = [
    pytest.param("rate_limit", 503, id="503-unavailable"),
    pytest.param("error_500", 502, id="502-provider-error"),
    pytest.param("timeout", 504, id="504-timeout"),
]
UNAVAILABLE_SAYS = ("Please try again in a minute", "could not reach our payment provider",
                    "Try again in a minute by reloading this page.", "Reload this page")


@pytest.fixture
def fast_stripe(settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    settings.STRIPE_READ_TIMEOUT = 0.3


@pytest.mark.emulator
@pytest.mark.parametrize("fault,status", FAULTS)
def test_stripe_out_of_reach_is_the_try_again_page_with_the_gateways_status(stripe_emulator, fast_stripe,
                                                                            three_ds_payment, api_client,
                                                                            fault, status):
    back = through_3ds_page(three_ds_payment["redirect_url"])
    stripe_emulator.arm_fault("GET", "/v1/payment_intents/", fault, count=5, seconds=1)

    page = browser_get(api_client, back)

    assert_page(page, status, "unavailable", "unavailable", *UNAVAILABLE_SAYS)
    if status == 503:
        assert int(page["Retry-After"]) > 0
    assert not Booking.objects.exists()  # settled later, by this page reloaded or by the webhook

    stripe_emulator.clear_faults()
    assert_page(browser_get(api_client, back), 200, "success", "succeeded")


@pytest.mark.emulator
def test_stripe_out_of_reach_for_a_card_is_the_try_again_page(stripe_emulator, fast_stripe, three_ds_card,
                                                              api_client):
    back = through_3ds_page(three_ds_card()["redirect_url"])
    stripe_emulator.arm_fault("GET", "/v1/setup_intents/", "rate_limit", count=5)

    assert_page(browser_get(api_client, back), 503, "unavailable", "unavailable", *UNAVAILABLE_SAYS)


# --- JSON: the same answers as before ----------------------------------------------------------------------------
JSON_ASKS = [pytest.param({"format": "json"}, {}, id="format=json"),
             pytest.param({}, {"HTTP_ACCEPT": "application/json"}, id="Accept")]


@pytest.mark.emulator
@pytest.mark.parametrize("params,headers", JSON_ASKS)
@pytest.mark.parametrize("query,status,error", [
    ({}, 400, {"code": "invalid_request", "message": "Give payment_intent or setup_intent.",
               "fields": {"payment_intent": ["This field is required."]}}),
    ({"payment_intent": "pi_<b>"}, 404, {"code": "not_found", "message": "Unknown payment or card set-up."}),
    ({"payment_intent": "pi_unknown"}, 404, {"code": "not_found", "message": "Unknown payment."}),
    ({"setup_intent": "seti_unknown"}, 404, {"code": "not_found", "message": "Unknown card set-up."}),
])
def test_json_errors_keep_the_contracts_envelope(stripe_emulator, api_client, query, status, error, params,
                                                 headers):
    response = api_client.get(RETURN_URL, {**query, **params}, **headers)

    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"].pop("request_id") == response["X-Request-ID"]
    assert body == {"success": False, "error": error}
    assert "Content-Security-Policy" not in response


@pytest.mark.emulator
@pytest.mark.parametrize("fault,status,code", [("rate_limit", 503, "payment_provider_unavailable"),
                                               ("error_500", 502, "payment_provider_error"),
                                               ("timeout", 504, "payment_provider_timeout")])
def test_json_stripe_out_of_reach_keeps_the_contracts_envelope(stripe_emulator, fast_stripe, three_ds_payment,
                                                               api_client, fault, status, code):
    stripe_emulator.arm_fault("GET", "/v1/payment_intents/", fault, count=5, seconds=1)

    response = api_client.get(RETURN_URL, {"payment_intent": three_ds_payment["payment_intent_id"],
                                           "format": "json"})

    assert response.status_code == status
    assert set(response.json()) == {"success", "error"} and response.json()["success"] is False
    assert response.json()["error"]["code"] == code
    if status == 503:
        assert int(response["Retry-After"]) > 0


@pytest.mark.emulator
def test_json_outcome_is_unchanged(three_ds_payment, api_client):
    back = through_3ds_page(three_ds_payment["redirect_url"])

    response = api_client.get(back, HTTP_ACCEPT="application/json")

    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"success", "status", "message", "kind", "payment_id", "booking_id"}
    assert (body["success"], body["status"], body["kind"], body["payment_id"]) == (
        True, "succeeded", "payment", three_ds_payment["payment_id"])
    assert body["booking_id"] == Booking.objects.get(payment_id=body["payment_id"]).pk


def test_the_schema_documents_the_page_and_the_envelope_for_each_status(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    responses = schema["paths"][RETURN_URL]["get"]["responses"]

    assert sorted(responses) == ["200", "400", "404", "502", "503", "504"]
    for status, documented in responses.items():
        assert documented["content"]["text/html"]["schema"] == {"type": "string"}, status
        if status != "200":
            assert documented["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
