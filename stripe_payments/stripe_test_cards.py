"""Stripe's own test PaymentMethods for the contract's test cards.

Stripe refuses raw card numbers unless the account has raw card data APIs. With a test secret key
against api.stripe.com the gateway sends these ids instead, so the seed's flow and the Postman
collection work against a real test account. These numbers are Stripe's public test cards, not
card data.
"""

TEST_PAYMENT_METHODS = {
    "4242424242424242": "pm_card_visa",
    "5555555555554444": "pm_card_mastercard",
    "378282246310005": "pm_card_amex",
    "4000000000000002": "pm_card_visa_chargeDeclined",
    "4000000000009995": "pm_card_visa_chargeDeclinedInsufficientFunds",
    "4000000000009987": "pm_card_visa_chargeDeclinedLostCard",
    "4000002500003155": "pm_card_authenticationRequiredOnSetup",
    "4000000000000341": "pm_card_chargeCustomerFail",
}
