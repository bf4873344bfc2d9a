"""Every answer of the seed's payment endpoints is documented in /api/schema/, status and body.

The real endpoints are driven against the in-process Stripe emulator, and each body is validated
against the operation's documented schema for that status (``$ref``s resolved, OpenAPI 3.0's
``nullable`` read as a type union, JSON Schema 2020-12). A status the operation does not document
fails, and so does any undocumented field of a 2xx body (``additionalProperties: false`` on every
object with documented properties); an error body may carry more than its envelope documents.
"""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from bookings.models import Booking
from stripe_payments.models import Payment, RefundRequest, SavedPaymentMethod

from .conftest import (
    ADD_URL,
    ADMIN_REFUNDS_URL,
    BAD_LUHN,
    CONFIRM_URL,
    CREATE_INTENT_URL,
    DECLINED,
    METHODS_URL,
    PAY_URL,
    PAYMENTS_URL,
    REFUNDS_URL,
    RETURN_URL,
    THREE_DS,
    VISA,
    card,
    client_sdk,
    post_event,
    through_3ds_page,
)

pytestmark = [pytest.mark.django_db, pytest.mark.emulator]

REF_PREFIX = "#/components/schemas/"


# --- OpenAPI 3.0 schema -> JSON Schema 2020-12 ------------------------------------------------------------
def json_schema(node, components: dict, *, strict: bool):
    """``node`` with its ``$ref``s inlined, ``nullable: true`` as ``{"anyOf": [..., {"type": "null"}]}``
    and, when ``strict``, ``additionalProperties: false`` on every object that lists its properties
    without saying otherwise."""
    if isinstance(node, list):
        return [json_schema(item, components, strict=strict) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith(REF_PREFIX), ref
        return json_schema(components[ref[len(REF_PREFIX):]], components, strict=strict)
    out = {}
    for key, value in node.items():
        if key in ("nullable", "example", "readOnly", "writeOnly", "description"):
            continue
        if key == "properties":
            out[key] = {name: json_schema(sub, components, strict=strict) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = json_schema(value, components, strict=strict)
        elif key in ("allOf", "oneOf", "anyOf"):
            out[key] = json_schema(value, components, strict=strict)
        else:
            out[key] = value
    if strict and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


class Contract:
    """The served OpenAPI document, and the check of one answer against it."""

    def __init__(self, document: dict):
        self.document = document
        self.components = document["components"]["schemas"]

    def operation(self, path: str, method: str) -> dict:
        assert path in self.document["paths"], f"{path} is not in the schema"
        assert method in self.document["paths"][path], f"{method.upper()} {path} is not in the schema"
        return self.document["paths"][path][method]

    def check(self, response, path: str, method: str, status: int, *, strict: bool | None = None) -> dict:
        """Assert ``response`` answered ``status``, documented for the operation, with a body its
        schema accepts (no undocumented field in a 2xx body, or in any with ``strict``). Returns the body."""
        assert response.status_code == status, (status, response.status_code, response.content[:500])
        documented = self.operation(path, method)["responses"]
        assert str(status) in documented, f"{method.upper()} {path} answered {status}; documented: {sorted(documented)}"
        content = documented[str(status)].get("content", {})
        assert "application/json" in content, f"{method.upper()} {path} documents no JSON body for {status}"
        strict = 200 <= status < 300 if strict is None else strict
        schema = json_schema(content["application/json"]["schema"], self.components, strict=strict)
        body = response.json()
        errors = sorted(Draft202012Validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, f"{method.upper()} {path} {status}:\n" + "\n".join(
            f"  at {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors)
        return body


@pytest.fixture(scope="module")
def contract(django_db_blocker) -> Contract:
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return Contract(response.json())


# --- the checker itself -----------------------------------------------------------------------------------
def test_the_conversion_reads_nullable_refs_and_forbids_undocumented_fields_of_a_success():
    components = {"Thing": {"type": "object", "properties": {
        "id": {"type": "integer"}, "note": {"type": "string", "nullable": True},
        "status": {"allOf": [{"$ref": "#/components/schemas/StatusEnum"}], "readOnly": True}},
        "required": ["id", "note"]}, "StatusEnum": {"enum": ["a", "b"], "type": "string"}}
    schema = json_schema({"$ref": "#/components/schemas/Thing"}, components, strict=True)
    validator = Draft202012Validator(schema)

    assert validator.is_valid({"id": 1, "note": None, "status": "a"})
    assert not validator.is_valid({"id": 1, "note": "x", "status": "c"})  # not in the enum
    assert not validator.is_valid({"id": 1, "note": 3})  # wrong type
    assert not validator.is_valid({"id": 1})  # a required field missing
    assert not validator.is_valid({"id": 1, "note": "x", "extra": True})  # undocumented
    assert Draft202012Validator(json_schema(components["Thing"], components, strict=False)).is_valid(
        {"id": 1, "note": "x", "extra": True})


def test_an_undocumented_status_or_field_fails_the_check(contract, client_for, student):
    listing = client_for(student).get(PAYMENTS_URL)
    contract.check(listing, PAYMENTS_URL, "get", 200)

    listing.status_code = 418
    with pytest.raises(AssertionError, match="answered 418; documented"):
        contract.check(listing, PAYMENTS_URL, "get", 418)
    listing.status_code = 200
    listing.json = lambda: {"count": 0, "next": None, "previous": None, "results": [], "total": 0}
    with pytest.raises(AssertionError, match="Additional properties"):
        contract.check(listing, PAYMENTS_URL, "get", 200)
    listing.json = lambda: {"count": "0", "next": None, "previous": None, "results": []}
    with pytest.raises(AssertionError, match="is not of type 'integer'"):
        contract.check(listing, PAYMENTS_URL, "get", 200)


# --- cards ------------------------------------------------------------------------------------------------
def test_the_card_endpoints_answer_as_documented(contract, student_client, client_for, stripe_emulator):
    def add(number, **extra):
        return student_client.post(ADD_URL, card(number, **extra), format="json")

    added = contract.check(add(VISA), ADD_URL, "post", 200)
    contract.check(add(VISA, save_for_future=False), ADD_URL, "post", 200)
    assert contract.check(add(DECLINED), ADD_URL, "post", 402)["error"]["code"] == "card_declined"
    assert contract.check(add(THREE_DS), ADD_URL, "post", 402)["error"]["code"] == "authentication_required"
    contract.check(add(BAD_LUHN), ADD_URL, "post", 400)
    contract.check(client_for(None).post(ADD_URL, card(VISA), format="json"), ADD_URL, "post", 401)

    listing = contract.check(student_client.get(METHODS_URL), METHODS_URL, "get", 200)
    assert [m["payment_method_id"] for m in listing["results"]] == [added["payment_method_id"]]
    default_path = f"{METHODS_URL}{{payment_method_id}}/default/"
    delete_path = f"{METHODS_URL}{{payment_method_id}}/delete/"
    pm = added["payment_method_id"]
    contract.check(student_client.post(f"{METHODS_URL}{pm}/default/"), default_path, "post", 200)
    contract.check(student_client.post(f"{METHODS_URL}pm_unknown/default/"), default_path, "post", 404)
    contract.check(student_client.delete(f"{METHODS_URL}{pm}/delete/"), delete_path, "delete", 200)
    contract.check(student_client.delete(f"{METHODS_URL}{pm}/delete/"), delete_path, "delete", 404)
    assert not SavedPaymentMethod.objects.exists()


# --- payments ---------------------------------------------------------------------------------------------
def test_process_payment_answers_as_documented(contract, student_client, client_for, teacher, gig,
                                               stripe_emulator):
    def pay(body, **kw):
        return student_client.post(PAY_URL, {"gig_id": gig.pk, **body}, format="json", **kw)

    paid = contract.check(pay({"card_details": card(VISA), "save_card": True}), PAY_URL, "post", 200)
    saved = SavedPaymentMethod.objects.get().stripe_payment_method_id
    again = contract.check(pay({"saved_payment_method_id": saved}), PAY_URL, "post", 200)
    assert paid["booking_id"] and again["booking_id"] and again["payment_method_saved"] is True
    contract.check(pay({"payment_method_id": "pm_card_mastercard"}), PAY_URL, "post", 200)
    declined = contract.check(pay({"card_details": card(DECLINED)}), PAY_URL, "post", 402)
    assert declined["error"]["decline_code"] == "generic_decline"
    three_ds = contract.check(pay({"card_details": card(THREE_DS)}), PAY_URL, "post", 402)
    assert three_ds["error"]["code"] == "authentication_required"
    contract.check(pay({"card_details": card(VISA, exp_month=13)}), PAY_URL, "post", 400)
    contract.check(pay({}), PAY_URL, "post", 400)
    contract.check(student_client.post(PAY_URL, {"gig_id": 999999, "card_details": card(VISA)}, format="json"),
                   PAY_URL, "post", 404)
    contract.check(client_for(teacher).post(PAY_URL, {"gig_id": gig.pk, "card_details": card(VISA)}, format="json"),
                   PAY_URL, "post", 403)
    headers = {"HTTP_IDEMPOTENCY_KEY": "schema-1"}
    contract.check(pay({"card_details": card(VISA)}, **headers), PAY_URL, "post", 200)
    conflict = contract.check(pay({"card_details": card(VISA), "save_card": True}, **headers), PAY_URL, "post", 409)
    assert conflict["error"]["code"] == "idempotency_conflict"


def test_the_payment_reads_answer_as_documented(contract, student_client, client_for, other_student, student,
                                                gig, make_paid_booking):
    booking = make_paid_booking(student=student, gig=gig)
    detail_path = f"{PAYMENTS_URL}{{payment_id}}/"

    listing = contract.check(student_client.get(PAYMENTS_URL), PAYMENTS_URL, "get", 200)
    assert [p["id"] for p in listing["results"]] == [booking.payment_id]
    contract.check(student_client.get(PAYMENTS_URL, {"status": "bogus"}), PAYMENTS_URL, "get", 400)
    contract.check(student_client.get(PAYMENTS_URL, {"page": 9}), PAYMENTS_URL, "get", 404)
    contract.check(client_for(None).get(PAYMENTS_URL), PAYMENTS_URL, "get", 401)
    contract.check(student_client.get(f"{PAYMENTS_URL}{booking.payment_id}/"), detail_path, "get", 200)
    contract.check(client_for(other_student).get(f"{PAYMENTS_URL}{booking.payment_id}/"), detail_path, "get", 404)


def test_the_client_side_flow_answers_as_documented(contract, student_client, gig, stripe_emulator):
    created = contract.check(student_client.post(CREATE_INTENT_URL, {"gig_id": gig.pk}, format="json"),
                             CREATE_INTENT_URL, "post", 200)
    contract.check(student_client.post(CREATE_INTENT_URL, {"gig_id": "x"}, format="json"), CREATE_INTENT_URL, "post",
                   400)
    pi_id = created["payment_intent_id"]
    early = contract.check(student_client.post(CONFIRM_URL, {"payment_intent_id": pi_id}, format="json"),
                           CONFIRM_URL, "post", 409)
    assert early["error"]["code"] == "invalid_state"

    client_sdk(stripe_emulator).v1.payment_intents.confirm(pi_id, params={"payment_method": "pm_card_visa"})
    confirmed = contract.check(student_client.post(CONFIRM_URL, {"payment_intent_id": pi_id}, format="json"),
                               CONFIRM_URL, "post", 200)

    assert confirmed["status"] == "succeeded" and confirmed["booking_id"]
    contract.check(student_client.post(CONFIRM_URL, {"payment_intent_id": "pi_unknown"}, format="json"),
                   CONFIRM_URL, "post", 404)
    contract.check(student_client.post(CONFIRM_URL, {}, format="json"), CONFIRM_URL, "post", 400)


def test_the_return_page_errors_answer_as_documented(contract, api_client, stripe_emulator):
    contract.check(api_client.get(RETURN_URL, {"format": "json"}), RETURN_URL, "get", 400)
    contract.check(api_client.get(RETURN_URL, {"payment_intent": "pi_unknown", "format": "json"}), RETURN_URL, "get",
                   404)
    contract.check(api_client.get(RETURN_URL, {"setup_intent": "seti_unknown", "format": "json"}), RETURN_URL, "get",
                   404)


def test_the_return_pages_json_answers_as_documented(contract, student_client, api_client, gig, stripe_emulator):
    paid = student_client.post(PAY_URL, {"gig_id": gig.pk, "card_details": card(THREE_DS)}, format="json")
    added = student_client.post(ADD_URL, card(THREE_DS), format="json")
    payment_page = api_client.get(through_3ds_page(paid.json()["error"]["redirect_url"]), HTTP_ACCEPT="application/json")
    card_page = api_client.get(through_3ds_page(added.json()["error"]["redirect_url"]), HTTP_ACCEPT="application/json")
    assert payment_page.status_code == card_page.status_code == 200
    assert payment_page.json()["kind"] == "payment" and card_page.json()["kind"] == "card"

    contract.check(payment_page, RETURN_URL, "get", 200)
    contract.check(card_page, RETURN_URL, "get", 200)


def test_an_invalid_state_error_documents_every_field_it_carries(contract, student_client, gig, stripe_emulator):
    created = student_client.post(CREATE_INTENT_URL, {"gig_id": gig.pk}, format="json").json()
    early = student_client.post(CONFIRM_URL, {"payment_intent_id": created["payment_intent_id"]}, format="json")

    contract.check(early, CONFIRM_URL, "post", 409, strict=True)


# --- refunds ----------------------------------------------------------------------------------------------
def test_the_refund_endpoints_answer_as_documented(contract, paid, student, teacher, admin_user, client_for,
                                                   stripe_emulator):
    payment = paid()
    student_api, admin_api = client_for(student), client_for(admin_user)
    approve_path, reject_path = f"{REFUNDS_URL}{{refund_id}}/approve/", f"{REFUNDS_URL}{{refund_id}}/reject/"

    def request_refund(amount):
        return student_api.post(REFUNDS_URL, {"payment_id": payment.pk, "amount": amount, "reason": "ill"},
                                format="json")

    first = contract.check(request_refund("10.00"), REFUNDS_URL, "post", 201)
    assert contract.check(request_refund("5.00"), REFUNDS_URL, "post", 409)["error"]["code"] == "refund_pending"
    contract.check(student_api.get(REFUNDS_URL), REFUNDS_URL, "get", 200)
    contract.check(admin_api.get(REFUNDS_URL, {"status": "pending"}), REFUNDS_URL, "get", 200)
    contract.check(student_api.get(REFUNDS_URL, {"status": "bogus"}), REFUNDS_URL, "get", 400)
    contract.check(student_api.post(f"{REFUNDS_URL}{first['id']}/approve/", {}, format="json"), approve_path, "post",
                   403)
    approved = contract.check(admin_api.post(f"{REFUNDS_URL}{first['id']}/approve/", {"note": "ok"}, format="json"),
                              approve_path, "post", 200)
    assert approved["status"] == "succeeded"
    contract.check(admin_api.post(f"{REFUNDS_URL}{first['id']}/approve/", {}, format="json"), approve_path, "post", 409)
    contract.check(admin_api.post(f"{REFUNDS_URL}999999/approve/", {}, format="json"), approve_path, "post", 404)

    second = contract.check(request_refund("5.00"), REFUNDS_URL, "post", 201)
    rejected = contract.check(admin_api.post(f"{REFUNDS_URL}{second['id']}/reject/", {"note": "no"}, format="json"),
                              reject_path, "post", 200)
    assert rejected["status"] == "rejected"
    contract.check(admin_api.post(f"{REFUNDS_URL}{second['id']}/reject/", {}, format="json"), reject_path, "post", 409)

    contract.check(request_refund("1000.00"), REFUNDS_URL, "post", 400)
    contract.check(client_for(teacher).post(ADMIN_REFUNDS_URL, {"payment_id": payment.pk}, format="json"),
                   ADMIN_REFUNDS_URL, "post", 403)
    direct = contract.check(admin_api.post(ADMIN_REFUNDS_URL, {"payment_id": payment.pk, "amount": "3.00"},
                                           format="json"), ADMIN_REFUNDS_URL, "post", 201)
    assert direct["kind"] == "admin" and direct["status"] == "succeeded"
    contract.check(admin_api.post(ADMIN_REFUNDS_URL, {"payment_id": 999999}, format="json"), ADMIN_REFUNDS_URL,
                   "post", 404)
    assert RefundRequest.objects.count() == 3


# --- bookings: decline and cancel -------------------------------------------------------------------------
def test_decline_and_cancel_answer_as_documented(contract, paid, student, teacher, client_for, stripe_emulator):
    decline_path, cancel_path = "/bookings/{booking_id}/decline/", "/bookings/{booking_id}/cancel/"
    declined_booking = Booking.objects.get(payment=paid())
    cancelled_booking = Booking.objects.get(payment=paid())

    contract.check(client_for(student).post(f"/bookings/{declined_booking.pk}/decline/"), decline_path, "post", 403)
    declined = contract.check(client_for(teacher).post(f"/bookings/{declined_booking.pk}/decline/"), decline_path,
                              "post", 200)
    contract.check(client_for(teacher).post(f"/bookings/{declined_booking.pk}/decline/"), decline_path, "post", 409)
    contract.check(client_for(teacher).post("/bookings/999999/decline/"), decline_path, "post", 404)
    contract.check(client_for(teacher).post(f"/bookings/{cancelled_booking.pk}/cancel/"), cancel_path, "post", 403)
    cancelled = contract.check(client_for(student).post(f"/bookings/{cancelled_booking.pk}/cancel/"), cancel_path,
                               "post", 200)
    contract.check(client_for(None).post(f"/bookings/{cancelled_booking.pk}/cancel/"), cancel_path, "post", 401)

    assert (declined["status"], cancelled["status"]) == ("declined", "cancelled")
    assert set(Payment.objects.values_list("status", flat=True)) == {"refunded"}


# --- the webhook ------------------------------------------------------------------------------------------
def test_the_webhook_answers_as_documented(contract, client, stripe_emulator):
    event = {"id": "evt_schema", "object": "event", "type": "customer.created", "created": 1, "livemode": False,
             "data": {"object": {"id": "cus_x", "object": "customer"}}}
    path = "/stripe-payments/webhook/"

    ack = contract.check(post_event(client, event), path, "post", 200)
    contract.check(post_event(client, event, signature="t=1,v1=00"), path, "post", 400)

    assert ack == {"received": True, "status": "ignored"}
