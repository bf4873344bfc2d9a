"""What to tell the person paying when a card is refused: pure data and one lookup.

Stripe's ``message`` on a card error is written for developers ("The provided PaymentMethod has
failed authentication. You can provide payment_method_data ..."). The API's ``message`` is looked
up here from Stripe's ``code`` and ``decline_code`` instead (Stripe's decline-code table,
https://docs.stripe.com/declines/codes, "next steps"), and Stripe's own text is kept for admins
(``Payment.provider_failure_message``, the logs).

Lost, stolen, fraudulent, pick-up and blocklisted cards are told the generic decline, as Stripe
asks: the real reason is never shown to whoever holds the card. Any code not listed here gets the
generic decline too, so a code Stripe adds later still answers something plain.
"""

from __future__ import annotations

GENERIC_DECLINE = "Your card was declined. Use another card or contact your bank."

_ASK_BANK = "Your card was declined. Contact your bank for details, or use another card."
_LIMIT = "You have reached a limit on this card. Use another card or contact your bank."
_PIN = "This card needs a PIN, which cannot be used online. Use another card."
_TRY_LATER = "Your card could not be charged just now. Try again in a few minutes, or use another card."
_AUTHENTICATE = "Your bank needs you to confirm this payment. Pay again and complete your bank's check."

# Decline codes whose reason must not be told to the card holder (Stripe: "present it as a generic
# decline").
CONCEALED_DECLINE_CODES = frozenset({"fraudulent", "lost_card", "merchant_blacklist", "pickup_card", "stolen_card"})

# Stripe's decline codes (``decline_code``) -> what the person paying is told.
DECLINE_MESSAGES: dict[str, str] = {
    "authentication_required": _AUTHENTICATE,
    "approve_with_id": "The payment could not be authorized. Try again, and if it fails again contact your bank.",
    "call_issuer": _ASK_BANK,
    "card_not_supported": "Your card does not support this kind of purchase. Use another card or contact your bank.",
    "card_velocity_exceeded": _LIMIT,
    "currency_not_supported": "Your card does not support payments in this currency. Use another card.",
    "do_not_honor": _ASK_BANK,
    "do_not_try_again": _ASK_BANK,
    "duplicate_transaction": "The same payment was just made with this card. Check your bookings before paying again.",
    "expired_card": "Your card has expired. Use another card.",
    "fraudulent": GENERIC_DECLINE,
    "generic_decline": GENERIC_DECLINE,
    "incorrect_number": "The card number is incorrect. Check it and try again.",
    "incorrect_cvc": "The security code (CVC) is incorrect. Check it and try again.",
    "incorrect_pin": "The PIN is incorrect. Try again or use another card.",
    "incorrect_zip": "The postal code is incorrect. Check it and try again.",
    "insufficient_funds": "Your card has insufficient funds. Use another card or contact your bank.",
    "invalid_account": "This card or its account is not valid. Use another card or contact your bank.",
    "invalid_amount": "Your card does not allow this amount. Use another card or contact your bank.",
    "invalid_cvc": "The security code (CVC) is invalid. Check it and try again.",
    "invalid_expiry_month": "The expiry month is invalid. Check it and try again.",
    "invalid_expiry_year": "The expiry year is invalid. Check it and try again.",
    "invalid_number": "The card number is invalid. Check it and try again.",
    "invalid_pin": "The PIN is incorrect. Try again or use another card.",
    "issuer_not_available": "Your bank could not be reached. Try again in a few minutes, or use another card.",
    "lost_card": GENERIC_DECLINE,
    "merchant_blacklist": GENERIC_DECLINE,
    "new_account_information_available": "Your card's details have changed. Use another card or contact your bank.",
    "no_action_taken": _ASK_BANK,
    "not_permitted": "This payment is not allowed on your card. Use another card or contact your bank.",
    "offline_pin_required": _PIN,
    "online_or_offline_pin_required": _PIN,
    "pickup_card": GENERIC_DECLINE,
    "pin_try_exceeded": "Too many wrong PIN attempts. Use another card or contact your bank.",
    "processing_error": "Your card could not be processed. Try again in a few minutes, or use another card.",
    "reenter_transaction": "The payment could not be processed. Try again, and if it fails again contact your bank.",
    "restricted_card": _ASK_BANK,
    "revocation_of_all_authorizations": _ASK_BANK,
    "revocation_of_authorization": _ASK_BANK,
    "security_violation": _ASK_BANK,
    "service_not_allowed": _ASK_BANK,
    "stolen_card": GENERIC_DECLINE,
    "stop_payment_order": _ASK_BANK,
    "testmode_decline": "This is a test card and cannot be used to pay. Use a real card.",
    "transaction_not_allowed": _ASK_BANK,
    "try_again_later": _TRY_LATER,
    "withdrawal_count_limit_exceeded": _LIMIT,
}

# Stripe's card error codes (``code``) and the project's own failure codes -> what the person
# paying is told, when the decline code says nothing more.
CODE_MESSAGES: dict[str, str] = {
    # Stripe's
    "card_declined": GENERIC_DECLINE,
    "authentication_required": _AUTHENTICATE,
    "card_decline_rate_limit_exceeded": "This card was declined too many times. Use another card or try again tomorrow.",
    "expired_card": DECLINE_MESSAGES["expired_card"],
    "incorrect_cvc": DECLINE_MESSAGES["incorrect_cvc"],
    "incorrect_number": DECLINE_MESSAGES["incorrect_number"],
    "incorrect_zip": DECLINE_MESSAGES["incorrect_zip"],
    "insufficient_funds": DECLINE_MESSAGES["insufficient_funds"],
    "invalid_cvc": DECLINE_MESSAGES["invalid_cvc"],
    "invalid_expiry_month": DECLINE_MESSAGES["invalid_expiry_month"],
    "invalid_expiry_year": DECLINE_MESSAGES["invalid_expiry_year"],
    "invalid_number": DECLINE_MESSAGES["invalid_number"],
    "processing_error": DECLINE_MESSAGES["processing_error"],
    "payment_intent_authentication_failure":
        "Your bank's security check was not completed, so no money was taken. Try again or use another card.",
    "setup_intent_authentication_failure":
        "Your bank's security check was not completed, so the card was not added. Try again or use another card.",
    "payment_intent_payment_attempt_failed": "The payment did not go through. Try again or use another card.",
    "payment_intent_payment_attempt_expired": "The payment was not completed in time. No money was taken. Pay again.",
    "setup_attempt_failed": "The card could not be set up. Try again or use another card.",
    "payment_method_provider_decline": GENERIC_DECLINE,
    "payment_method_provider_timeout": _TRY_LATER,
    # The project's own (services/payments.py, services/reconciliation.py, services/lifecycle.py)
    "invalid_request": "The payment could not be made with this card. Try again or use another card.",
    "abandoned": "The payment was not completed in time, so no money was taken. Pay again.",
    "not_charged": "The payment did not go through and no money was taken. Pay again.",
}


def customer_message(code: str | None, decline_code: str | None = None) -> str:
    """What to tell the person paying about a refused card: by ``decline_code`` (the more precise),
    then by ``code``, else the generic decline. Never Stripe's own text."""
    if decline_code in CONCEALED_DECLINE_CODES:
        return GENERIC_DECLINE
    if decline_code and decline_code in DECLINE_MESSAGES:
        return DECLINE_MESSAGES[decline_code]
    if code and code in CODE_MESSAGES:
        return CODE_MESSAGES[code]
    return GENERIC_DECLINE
