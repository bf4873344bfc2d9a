"""What the payment views share: the error responses every payment write documents."""

from linguaflex.openapi import error_responses

PAYMENT_WRITE_ERRORS = error_responses(400, 401, 402, 403, 404, 409, 413, 415, 429, 502, 503, 504)
