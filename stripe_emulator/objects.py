"""Stripe-shaped objects.

Each builder returns a dict with exactly the top-level keys of Stripe's example object of that
type (``resources.<type>`` in stripe/openapi's fixtures3.json, copied to ``stripe_emulator/data/``;
the emulator's tests compare the key sets), plus the keys the pinned API version (``API_VERSION``)
added since that example (``tests/test_shapes.py``, ``PINNED_VERSION_KEYS``). Every field, nested
ones included, follows the pinned version's types: stripe-node 23.1.0's, which
``tests/test_types.py`` compiles every body of a full run against (``typecheck/check.py``). A
field the types mark optional without null (``reference?: string``) is left out, never null.
Values start as Stripe sets them on a new object; the operations in ``api/`` change
them as the object moves through its states. Searchable types come as ``search.Tracked`` dicts, so
the lagging search index sees their changes.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from .cards import DISPLAY_BRAND, CardSummary
from .search import Tracked

API_VERSION = "2026-10-28.endive"

_ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Random bytes mapped onto the 62 characters (nearly uniform; ids need only be unique).
_TO_ALPHABET = bytes.maketrans(bytes(range(256)), (_ALPHABET * 5)[:256])


# The platform's Connect application, as application fees name it.
APPLICATION_ID = "ca_LinguaFlexEmulatorPlatform00"


def _random_chars(n: int) -> str:
    return os.urandom(n).translate(_TO_ALPHABET).decode("ascii")


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_1{_random_chars(length - 1)}"


def secret_for(obj_id: str) -> str:
    return f"{obj_id}_secret_{_random_chars(25)}"


def empty_address() -> dict:
    return {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None,
            "state": None}


def billing_details(params: Optional[dict]) -> dict:
    params = params if isinstance(params, dict) else {}
    address = empty_address()
    if isinstance(params.get("address"), dict):
        for k in address:
            address[k] = params["address"].get(k) or None
    return {
        "address": address,
        "email": params.get("email") or None,
        "name": params.get("name") or None,
        "phone": params.get("phone") or None,
        "tax_id": params.get("tax_id") or None,
    }


def list_object(url: str, data: list, has_more: bool) -> dict:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def customer(*, cid: str, now: int, email=None, name=None, description=None, phone=None,
             metadata=None) -> dict:
    return {
        "address": None,
        "balance": 0,
        "created": now,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": description,
        "discount": None,
        "email": email,
        "id": cid,
        "invoice_prefix": cid[-8:].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": metadata or {},
        "name": name,
        "next_invoice_sequence": 1,
        "object": "customer",
        "phone": phone,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def card_details(card: CardSummary) -> dict:
    return {
        "brand": card.brand,
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": "pass" if card.cvc_provided else None,
        },
        "country": "US",
        "display_brand": DISPLAY_BRAND.get(card.brand, card.brand),
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "fingerprint": card.fingerprint,
        "funding": card.funding,
        "generated_from": None,
        "last4": card.last4,
        "networks": {"available": [card.brand], "preferred": None},
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
        "regulated_status": "unregulated",
    }


def payment_method(*, pmid: str, now: int, card: CardSummary, billing: Optional[dict] = None,
                   metadata=None, allow_redisplay: str = "unspecified") -> dict:
    return {
        "allow_redisplay": allow_redisplay,
        "billing_details": billing_details(billing),
        "card": card_details(card),
        "created": now,
        "customer": None,
        "id": pmid,
        "livemode": False,
        "metadata": metadata or {},
        "object": "payment_method",
        "type": "card",
        "customer_account": None,
    }


def _pi_transfer_data(transfer_data: dict) -> dict:
    """A PaymentIntent's ``transfer_data``: ``amount`` only when one was given (the types say
    ``amount?: number``, absent rather than null)."""
    out = {"destination": transfer_data["destination"]}
    if transfer_data.get("amount") is not None:
        out = {"amount": transfer_data["amount"], **out}
    return out


def _charge_transfer_data(transfer_data: Optional[dict]) -> Optional[dict]:
    """A charge's ``transfer_data``: ``amount`` is always there, null when none was given."""
    if transfer_data is None:
        return None
    return {"amount": transfer_data.get("amount"), "destination": transfer_data["destination"]}


# The ECI of a fully authenticated 3-D Secure payment, by card network (Mastercard's scheme
# numbers it 02, Visa's and the others' 05); a payment without 3-D Secure has none.
_AUTHENTICATED_ECI = {"mastercard": "02"}


def payment_intent(*, piid: str, now: int, amount: int, currency: str, capture_method: str,
                   customer: Optional[str], description: Optional[str], metadata: dict,
                   payment_method_types: Optional[list], receipt_email: Optional[str],
                   setup_future_usage: Optional[str], transfer_data: Optional[dict],
                   application_fee_amount: Optional[int], on_behalf_of: Optional[str],
                   transfer_group: Optional[str], statement_descriptor: Optional[str],
                   statement_descriptor_suffix: Optional[str]) -> dict:
    if transfer_data is not None:
        transfer_data = _pi_transfer_data(transfer_data)
    return Tracked({
        "allowed_payment_method_types": list(payment_method_types) if payment_method_types else None,
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": application_fee_amount,
        "automatic_payment_methods": (None if payment_method_types
                                      else {"allow_redirects": "always", "enabled": True}),
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture_method,
        "client_secret": secret_for(piid),
        "confirmation_method": "automatic",
        "created": now,
        "currency": currency,
        "customer": customer,
        "description": description,
        "id": piid,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": metadata,
        "next_action": None,
        "object": "payment_intent",
        "on_behalf_of": on_behalf_of,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {"installments": None, "mandate_options": None, "network": None,
                     "request_three_d_secure": "automatic"}
        },
        "payment_method_types": payment_method_types or ["card"],
        "payment_record": None,
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": setup_future_usage,
        "shipping": None,
        "statement_descriptor": statement_descriptor,
        "statement_descriptor_suffix": statement_descriptor_suffix,
        "status": "requires_payment_method",
        "transfer_data": transfer_data,
        "transfer_group": transfer_group,
        "source": None,
        "excluded_payment_method_types": None,
        "customer_account": None,
        "managed_payments": None,
    })


def setup_intent(*, siid: str, now: int, customer: Optional[str], description: Optional[str],
                 metadata: dict, payment_method_types: Optional[list], usage: str) -> dict:
    return {
        "allowed_payment_method_types": list(payment_method_types) if payment_method_types else None,
        "application": None,
        "automatic_payment_methods": (None if payment_method_types
                                      else {"allow_redirects": "always", "enabled": True}),
        "cancellation_reason": None,
        "client_secret": secret_for(siid),
        "created": now,
        "customer": customer,
        "description": description,
        "flow_directions": None,
        "id": siid,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": metadata,
        "next_action": None,
        "object": "setup_intent",
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {"mandate_options": None, "network": None,
                     "request_three_d_secure": "automatic"}
        },
        "payment_method_types": payment_method_types or ["card"],
        "single_use_mandate": None,
        "status": "requires_payment_method",
        "usage": usage,
        "excluded_payment_method_types": None,
    }


def charge_outcome(decline_code: Optional[str], message: Optional[str]) -> dict:
    if decline_code is None:
        return {"advice_code": None, "network_advice_code": None, "network_decline_code": None,
                "network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                "risk_score": 20, "seller_message": "Payment complete.", "type": "authorized"}
    return {"advice_code": "try_again_later" if decline_code == "processing_error"
            else "do_not_try_again", "network_advice_code": None,
            "network_decline_code": None, "network_status": "declined_by_network",
            "reason": decline_code, "risk_level": "normal", "risk_score": 20,
            "seller_message": message or "The bank did not return any further details with this "
                                         "decline.",
            "type": "issuer_declined"}


def charge(*, chid: str, now: int, pi: dict, pm: dict, captured: bool, paid: bool,
           failure_code: Optional[str], failure_message: Optional[str],
           decline_code: Optional[str], balance_transaction: Optional[str],
           three_d_secure: bool) -> dict:
    card = pm["card"]
    status = "succeeded" if paid else "failed"
    eci = _AUTHENTICATED_ECI.get(card["brand"], "05") if three_d_secure else None
    return {
        "amount": pi["amount"],
        "amount_captured": pi["amount"] if captured else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": pi["application_fee_amount"],
        "balance_transaction": balance_transaction,
        "billing_details": pm["billing_details"],
        "calculated_statement_descriptor": "LINGUAFLEX" if paid else None,
        "captured": captured,
        "created": now,
        "currency": pi["currency"],
        "customer": pi["customer"],
        "description": pi["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": failure_code,
        "failure_message": failure_message,
        "fraud_details": {},
        "id": chid,
        "livemode": False,
        "metadata": dict(pi["metadata"]),
        "object": "charge",
        "on_behalf_of": pi["on_behalf_of"],
        "outcome": charge_outcome(decline_code if not paid else None,
                                  None),
        "paid": paid,
        "payment_intent": pi["id"],
        "payment_method": pm["id"],
        "payment_method_details": {
            "card": {
                "amount_authorized": pi["amount"] if paid else None,
                "brand": card["brand"],
                "checks": card["checks"],
                "country": card["country"],
                "electronic_commerce_indicator": eci,
                "exp_month": card["exp_month"],
                "exp_year": card["exp_year"],
                "extended_authorization": {"status": "disabled"},
                "fingerprint": card["fingerprint"],
                "funding": card["funding"],
                "incremental_authorization": {"status": "unavailable"},
                "installments": None,
                "last4": card["last4"],
                "mandate": None,
                "multicapture": {"status": "unavailable"},
                "network": card["brand"],
                "network_token": {"used": False},
                "overcapture": {"maximum_amount_capturable": pi["amount"],
                                "status": "unavailable"},
                "three_d_secure": ({"authentication_flow": "challenge",
                                    "electronic_commerce_indicator": eci,
                                    "exemption_indicator": None, "result": "authenticated",
                                    "result_reason": None, "transaction_id": None,
                                    "version": "2.2.0"} if three_d_secure else None),
                "wallet": None,
                "authorization_code": "123456" if paid else None,
                "regulated_status": "unregulated",
                "network_transaction_id": None,
                "transaction_link_id": None,
            },
            "type": "card",
        },
        "receipt_email": pi["receipt_email"],
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "refunds": list_object(f"/v1/charges/{chid}/refunds", [], False),
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": pi["statement_descriptor"],
        "statement_descriptor_suffix": pi["statement_descriptor_suffix"],
        "status": status,
        "transfer_data": _charge_transfer_data(pi["transfer_data"]),
        "transfer_group": pi["transfer_group"],
        "source": None,
    }


# Balance transaction type -> its reporting category (Stripe's "balance transaction types").
REPORTING_CATEGORY = {
    "payment": "charge", "payment_refund": "refund", "application_fee": "platform_earning",
    "application_fee_refund": "platform_earning_refund", "transfer_refund": "transfer_reversal",
    "payout_cancel": "payout_reversal", "payout_failure": "payout_reversal",
}
DAY = 86400


def balance_transaction(*, txnid: str, now: int, amount: int, currency: str, source: str,
                        type_: str, description: Optional[str],
                        fee_details: Optional[list] = None, available_on: Optional[int] = None,
                        reporting_category: Optional[str] = None) -> dict:
    """A balance transaction: Stripe's processing fee (2.9% + 30 cents) on a charge, else the
    given ``fee_details`` (an application fee taken from a connected account's payment);
    available two days later unless ``available_on`` says otherwise."""
    if fee_details is None:
        fee = round(amount * 0.029) + 30 if type_ == "charge" else 0
        fee_details = ([{"amount": fee, "application": None, "currency": currency,
                         "description": "Stripe processing fees", "type": "stripe_fee"}]
                       if fee else [])
    fee = sum(d["amount"] for d in fee_details)
    available_on = now + 2 * DAY if available_on is None else available_on
    return {
        "amount": amount,
        "available_on": available_on,
        "created": now,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fee_details,
        "id": txnid,
        "net": amount - fee,
        "object": "balance_transaction",
        "reporting_category": reporting_category or REPORTING_CATEGORY.get(type_, type_),
        "source": source,
        "status": "available" if available_on <= now else "pending",
        "type": type_,
        "balance_type": "payments",
    }


def refund(*, reid: str, now: int, amount: int, ch: dict, reason: Optional[str],
           metadata: dict, balance_transaction: Optional[str]) -> dict:
    return {
        "amount": amount,
        "balance_transaction": balance_transaction,
        "charge": ch["id"],
        "created": now,
        "currency": ch["currency"],
        # No ``reference`` (the ARN) while it is pending: the field is absent, never null.
        "destination_details": {"card": {"reference_status": "pending",
                                         "reference_type": "acquirer_reference_number",
                                         "type": "refund"}, "type": "card"},
        "id": reid,
        "metadata": metadata,
        "object": "refund",
        "payment_intent": ch["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
        "customer": ch["customer"],
        "customer_account": None,
        "payment_method": ch["payment_method"],
    }


def dispute(*, dpid: str, now: int, ch: dict, reason: str) -> dict:
    evidence_keys = [
        "access_activity_log", "billing_address", "cancellation_policy",
        "cancellation_policy_disclosure", "cancellation_rebuttal", "customer_communication",
        "customer_email_address", "customer_name", "customer_purchase_ip", "customer_signature",
        "duplicate_charge_documentation", "duplicate_charge_explanation", "duplicate_charge_id",
        "product_description", "receipt", "refund_policy", "refund_policy_disclosure",
        "refund_refusal_explanation", "service_date", "service_documentation",
        "shipping_address", "shipping_carrier", "shipping_date", "shipping_documentation",
        "shipping_tracking_number", "uncategorized_file", "uncategorized_text",
    ]
    evidence: dict[str, Any] = {k: None for k in evidence_keys}
    evidence["enhanced_evidence"] = {}
    amount = ch["amount_captured"] - ch["amount_refunded"]
    card = ch["payment_method_details"]["card"]
    return {
        "amount": amount,
        "balance_transactions": [],
        "charge": ch["id"],
        "created": now,
        "currency": ch["currency"],
        "evidence": evidence,
        "evidence_details": {"due_by": now + 7 * 86400, "has_evidence": False,
                             "past_due": False, "submission_count": 0,
                             "submission_method": "not_submitted",
                             "enhanced_eligibility": {}},
        "id": dpid,
        "intended_submission_method": None,
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "object": "dispute",
        "payment_intent": ch["payment_intent"],
        "payment_method_details": {"card": {"brand": card["brand"], "case_type": "chargeback",
                                            "network_reason_code": "10.4",
                                            "network": card["network"]}, "type": "card"},
        "reason": reason,
        "status": "needs_response",
        "enhanced_eligibility_types": [],
    }


def event(*, evid: str, now: int, type_: str, obj: dict, request_id: Optional[str],
          idempotency_key: Optional[str], previous_attributes: Optional[dict],
          pending_webhooks: int, account: Optional[str] = None) -> dict:
    data: dict[str, Any] = {"object": obj}
    if previous_attributes:
        data["previous_attributes"] = previous_attributes
    extra = {"account": account} if account else {}  # Connect events only: absent otherwise
    return {
        **extra,
        "api_version": API_VERSION,
        "created": now,
        "data": data,
        "id": evid,
        "livemode": False,
        "object": "event",
        "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type_,
    }


def account(*, acctid: str, now: int, type_: str, country: str, email: Optional[str],
            metadata: dict, capabilities: dict, controller: dict) -> dict:
    due = ["business_profile.url", "external_account", "individual.first_name",
           "individual.last_name", "tos_acceptance.date", "tos_acceptance.ip"]
    requirements = {"alternatives": [], "current_deadline": None, "currently_due": list(due),
                    "disabled_reason": "requirements.past_due", "errors": [],
                    "eventually_due": list(due), "past_due": list(due),
                    "pending_verification": []}
    return {
        "business_profile": {"annual_revenue": None, "estimated_worker_count": None, "mcc": None,
                             "name": None, "product_description": None,
                             "support_address": None, "support_email": None,
                             "support_phone": None, "support_url": None, "url": None,
                             "minority_owned_business_designation": None,
                             "specified_commercial_transactions_act_url": None},
        "business_type": None,
        "capabilities": capabilities,
        "charges_enabled": False,
        "controller": controller,
        "country": country,
        "created": now,
        "default_currency": "usd",
        "details_submitted": False,
        "email": email,
        "external_accounts": list_object(f"/v1/accounts/{acctid}/external_accounts", [], False),
        "future_requirements": {"alternatives": [], "current_deadline": None,
                                "currently_due": [], "disabled_reason": None, "errors": [],
                                "eventually_due": [], "past_due": [],
                                "pending_verification": []},
        "id": acctid,
        "metadata": metadata,
        "object": "account",
        "payouts_enabled": False,
        "requirements": requirements,
        "settings": {"branding": {"icon": None, "logo": None, "primary_color": None,
                                  "secondary_color": None},
                     "card_payments": {"decline_on": {"avs_failure": False, "cvc_failure": False},
                                       "statement_descriptor_prefix": None,
                                       "statement_descriptor_prefix_kana": None,
                                       "statement_descriptor_prefix_kanji": None},
                     "dashboard": {"display_name": None, "timezone": "Etc/UTC"},
                     "payments": {"statement_descriptor": None,
                                  "statement_descriptor_kana": None,
                                  "statement_descriptor_kanji": None,
                                  "statement_descriptor_prefix_kana": None,
                                  "statement_descriptor_prefix_kanji": None},
                     "payouts": {"debit_negative_balances": True,
                                 "schedule": {"delay_days": 2, "interval": "daily"},
                                 "statement_descriptor": None}},
        "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
        "type": type_,
    }


def account_link(*, now: int, url: str) -> dict:
    return {"created": now, "expires_at": now + 300, "object": "account_link", "url": url}


def capability(*, account_id: str, name: str, status: str, requested: bool,
               requested_at: Optional[int], requirements: dict) -> dict:
    return {"account": account_id, "future_requirements": _empty_requirements(),
            "id": name, "object": "capability", "requested": requested,
            "requested_at": requested_at, "requirements": requirements, "status": status}


def _empty_requirements() -> dict:
    return {"alternatives": [], "current_deadline": None, "currently_due": [],
            "disabled_reason": None, "errors": [], "eventually_due": [], "past_due": [],
            "pending_verification": []}


def _bank_requirements() -> dict:
    return {"currently_due": [], "errors": [], "past_due": [], "pending_verification": []}


def bank_account(*, baid: str, account_id: str) -> dict:
    """The test bank account (STRIPE TEST BANK, routing 110000000) onboarding adds: payouts go
    there."""
    return {"account": account_id, "account_holder_name": None, "account_holder_type": None,
            "account_type": None, "available_payout_methods": ["standard"],
            "bank_name": "STRIPE TEST BANK", "country": "US", "currency": "usd",
            "default_for_currency": True, "fingerprint": _random_chars(16),
            "future_requirements": _bank_requirements(), "id": baid, "last4": "6789",
            "metadata": {}, "object": "bank_account", "requirements": _bank_requirements(),
            "routing_number": "110000000", "status": "new"}


def transfer(*, trid: str, now: int, amount: int, currency: str, destination: str,
             destination_payment: str, balance_transaction: str,
             source_transaction: Optional[str], transfer_group: Optional[str],
             description: Optional[str], metadata: dict) -> dict:
    return {
        "amount": amount, "amount_reversed": 0, "balance_transaction": balance_transaction,
        "created": now, "currency": currency, "description": description,
        "destination": destination, "destination_payment": destination_payment, "id": trid,
        "livemode": False, "metadata": metadata, "object": "transfer",
        "reversals": list_object(f"/v1/transfers/{trid}/reversals", [], False),
        "reversed": False, "source_transaction": source_transaction, "source_type": "card",
        "transfer_group": transfer_group,
    }


def destination_payment(*, pyid: str, now: int, amount: int, currency: str, transfer_id: str,
                        balance_transaction: str, destination: str,
                        application_fee: Optional[str] = None,
                        application_fee_amount: Optional[int] = None) -> dict:
    """The payment (``py_``, a Charge) a transfer creates on the connected account."""
    return {
        "amount": amount, "amount_captured": amount, "amount_refunded": 0,
        "application": None, "application_fee": application_fee,
        "application_fee_amount": application_fee_amount,
        "balance_transaction": balance_transaction, "billing_details": {
            "address": empty_address(), "email": None, "name": None, "phone": None,
            "tax_id": None},
        "calculated_statement_descriptor": None, "captured": True, "created": now,
        "currency": currency, "customer": None, "description": None, "disputed": False,
        "failure_balance_transaction": None, "failure_code": None, "failure_message": None,
        "fraud_details": {}, "id": pyid, "livemode": False, "metadata": {}, "object": "charge",
        "on_behalf_of": None, "outcome": None, "paid": True, "payment_intent": None,
        "payment_method": None, "payment_method_details": {
            "stripe_account": {}, "type": "stripe_account"},
        "receipt_email": None, "receipt_number": None, "receipt_url": None, "refunded": False,
        "refunds": list_object(f"/v1/charges/{pyid}/refunds", [], False), "review": None,
        "shipping": None, "source_transfer": transfer_id, "statement_descriptor": None,
        "statement_descriptor_suffix": None, "status": "succeeded", "transfer_data": None,
        "transfer_group": None, "source": None,
    }


def transfer_reversal(*, trrid: str, now: int, amount: int, currency: str, transfer_id: str,
                      balance_transaction: str, destination_payment_refund: Optional[str],
                      source_refund: Optional[str], metadata: dict) -> dict:
    return {"amount": amount, "balance_transaction": balance_transaction, "created": now,
            "currency": currency, "destination_payment_refund": destination_payment_refund,
            "id": trrid, "metadata": metadata, "object": "transfer_reversal",
            "source_refund": source_refund, "transfer": transfer_id}


def application_fee(*, feeid: str, now: int, amount: int, currency: str, account_id: str,
                    charge_id: str, originating_transaction: str,
                    balance_transaction: str) -> dict:
    """A fee taken from a connected account's payment ``charge_id`` (``py_``), the result of
    the platform's destination charge ``originating_transaction``."""
    return {
        "account": account_id, "amount": amount, "amount_refunded": 0,
        "application": APPLICATION_ID, "balance_transaction": balance_transaction,
        "charge": charge_id, "created": now, "currency": currency,
        "fee_source": {"charge": charge_id, "type": "charge"}, "id": feeid, "livemode": False,
        "object": "application_fee", "originating_transaction": originating_transaction,
        "refunded": False,
        "refunds": list_object(f"/v1/application_fees/{feeid}/refunds", [], False),
    }


def fee_refund(*, frid: str, now: int, amount: int, currency: str, fee_id: str,
               balance_transaction: str, metadata: dict) -> dict:
    return {"amount": amount, "balance_transaction": balance_transaction, "created": now,
            "currency": currency, "fee": fee_id, "id": frid, "metadata": metadata,
            "object": "fee_refund"}


def payout(*, poid: str, now: int, amount: int, currency: str, destination: Optional[str],
           balance_transaction: str, description: Optional[str], metadata: dict,
           statement_descriptor: Optional[str]) -> dict:
    return {
        "amount": amount, "application_fee": None, "application_fee_amount": None,
        "arrival_date": now + DAY, "automatic": False,
        "balance_transaction": balance_transaction, "created": now, "currency": currency,
        "description": description, "destination": destination,
        "failure_balance_transaction": None, "failure_code": None, "failure_message": None,
        "id": poid, "livemode": False, "metadata": metadata, "method": "standard",
        "object": "payout", "original_payout": None, "payout_method": None,
        "reconciliation_status": "not_applicable", "reversed_by": None, "source_type": "card",
        "statement_descriptor": statement_descriptor, "status": "pending",
        "trace_id": {"status": "pending", "value": None}, "type": "bank_account",
    }


def balance(*, available: int, pending: int, currency: str = "usd",
            connect_reserved: Optional[int] = None) -> dict:
    out = {"available": [{"amount": available, "currency": currency,
                          "source_types": {"card": available}}],
           "livemode": False, "object": "balance",
           "pending": [{"amount": pending, "currency": currency,
                        "source_types": {"card": pending}}]}
    if connect_reserved is not None:
        out["connect_reserved"] = [{"amount": connect_reserved, "currency": currency}]
    return out
