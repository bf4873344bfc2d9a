"""Stripe's error responses."""

from __future__ import annotations

from typing import Any, Optional

DOC_URL = "https://stripe.com/docs/error-codes/"

# Codes that say the request's parameters failed validation, besides every ``parameter_*`` one.
VALIDATION_CODES = frozenset({"payment_method_types_no_longer_supported"})


def is_validation_code(code: Optional[str]) -> bool:
    return bool(code) and (code.startswith("parameter") or code in VALIDATION_CODES)


class StripeError(Exception):
    """An error answered as Stripe does: ``{"error": {...}}`` with its HTTP status.

    ``extra`` holds the objects Stripe embeds in card errors (payment_intent, setup_intent,
    payment_method, charge).
    """

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: Optional[str] = None,
        param: Optional[str] = None,
        decline_code: Optional[str] = None,
        extra: Optional[dict] = None,
        cacheable: Optional[bool] = None,
    ):
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        # Stripe saves the result of an idempotent request once the endpoint started executing,
        # errors included (https://docs.stripe.com/api/idempotent_requests); a request whose
        # parameters fail validation is not saved, so a corrected retry under the same key runs.
        # Validation: an unknown, missing or malformed parameter (``parameter_*`` codes, and the
        # parameter checks of params.py, which pass cacheable=False). Everything else raised
        # while the endpoint runs is a result: a card error (402), an unknown id (404, or 400
        # resource_missing), a state error (``*_unexpected_state``), a refund over the amount.
        self.cacheable = not is_validation_code(code) if cacheable is None else cacheable

    def body(self) -> dict:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            err["code"] = self.code
            err["doc_url"] = DOC_URL + self.code.replace("_", "-")
        if self.decline_code:
            err["decline_code"] = self.decline_code
        if self.param:
            err["param"] = self.param
        err.update(self.extra)
        return {"error": err}


def invalid(message: str, *, param: Optional[str] = None, code: Optional[str] = None,
            status: int = 400, cacheable: Optional[bool] = None) -> StripeError:
    return StripeError(status, "invalid_request_error", message, code=code, param=param,
                       cacheable=cacheable)


def invalid_param(message: str, *, param: Optional[str] = None,
                  code: Optional[str] = None) -> StripeError:
    """A parameter failed validation (400): never saved under an idempotency key."""
    return invalid(message, param=param, code=code, cacheable=False)


def missing(kind: str, id_: str, *, param: Optional[str] = None) -> StripeError:
    """Unknown id: 404 when it is in the path, 400 with ``param`` when it is in the body."""
    return StripeError(404 if param is None else 400, "invalid_request_error",
                       f"No such {kind}: '{id_}'", code="resource_missing", param=param)


def param_missing(param: str) -> StripeError:
    return invalid(f"Missing required param: {param}.", param=param, code="parameter_missing")


def unknown_param(param: str) -> StripeError:
    return invalid(f"Received unknown parameter: {param}", param=param, code="parameter_unknown")
