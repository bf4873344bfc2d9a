"""What the payment views share: the error responses every payment write documents, and what the
self-contained HTML pages a browser lands on from Stripe (the 3-D Secure return, Connect's
refresh and return) share: their Content-Security-Policy and their documented error answers."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

from linguaflex.openapi import error_responses

PAYMENT_WRITE_ERRORS = error_responses(400, 401, 402, 403, 404, 409, 413, 415, 429, 502, 503, 504)

# The pages may be styled only by their own inline <style>; they load nothing, run nothing, post nothing.
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; " \
           "frame-ancestors 'none'"


def page_errors(*statuses: int) -> dict:
    """The envelope for JSON, the page (bad_link, or unavailable for 5xx) for a browser."""
    responses: dict = {}
    for status, envelope in error_responses(*statuses).items():
        page = "the page's unavailable outcome" if status >= 500 else "the page's bad_link outcome"
        responses[(status, "application/json")] = OpenApiResponse(
            envelope.response, description=f"{envelope.description}; a browser gets {page}")
        responses[(status, "text/html")] = OpenApiResponse(OpenApiTypes.STR)
    return responses
