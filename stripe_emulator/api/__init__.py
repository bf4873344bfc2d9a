"""The /v1 operations: Stripe's behaviour for the resources the project uses.

Every operation is ``fn(state, ctx, params, *path_ids) -> object`` and runs under
``state.lock``. It returns the stored object (the server expands and serializes it) or raises
:class:`StripeError`. State changes made before a card error is raised are kept, as at Stripe
(a declined PaymentIntent stays declined, with its failed charge).

One module per resource (``customers``, ``payment_methods``, ``setup_intents``,
``payment_intents``, ``charges`` with disputes, ``refunds``, ``events``, ``connect`` (accounts,
capabilities, account links), ``transfers`` (destination charges, transfers, reversals,
application fees) and ``balance`` (per-account ledgers, balance transactions, payouts)), each
with its own ``ROUTES``; what several of them share is in ``_common`` (lists, look-ups, amount
and currency), ``_pm_common`` (PaymentMethods) and ``_intent_common`` (both kinds
of intent). ``ROUTES``, the table ``emulator.Emulator`` dispatches on, is assembled here, and the
operations and triggers (``create_dispute``, ``fail_refund``, ``complete_pi_authentication``,
``complete_si_authentication``, ``complete_onboarding``, ``restrict_account``, ``close_dispute``,
``release_funds``, ``settle_payout``) are re-exported, so ``api.<name>`` works
as before the split.
"""

from __future__ import annotations

from . import (
    balance,
    charges,
    connect,
    customers,
    events,
    payment_intents,
    payment_methods,
    refunds,
    setup_intents,
    transfers,
)
from ._common import CURRENCIES, MAX_AMOUNT, MIN_AMOUNT, Operation, Route
from ._intent_common import AUTH_FAILURE_MESSAGE, CONFIRMABLE
from .balance import ACCOUNT_SCOPED, balance_transactions_retrieve, release_funds, settle_payout
from .charges import charges_list, charges_retrieve, close_dispute, create_dispute, disputes_retrieve
from .connect import (
    account_links_create,
    accounts_create,
    accounts_retrieve,
    complete_onboarding,
    restrict_account,
)
from .customers import (
    customers_create,
    customers_delete,
    customers_list,
    customers_list_payment_methods,
    customers_retrieve,
    customers_update,
)
from .events import events_list, events_retrieve
from .payment_intents import (
    CANCELLATION_REASONS,
    complete_pi_authentication,
    payment_intents_cancel,
    payment_intents_capture,
    payment_intents_confirm,
    payment_intents_create,
    payment_intents_list,
    payment_intents_retrieve,
    payment_intents_search,
    payment_intents_update,
)
from .payment_methods import (
    payment_methods_attach,
    payment_methods_create,
    payment_methods_detach,
    payment_methods_list,
    payment_methods_retrieve,
    payment_methods_update,
)
from .refunds import (
    REFUND_REASONS,
    fail_refund,
    refunds_create,
    refunds_list,
    refunds_retrieve,
    refunds_update,
)
from .setup_intents import (
    complete_si_authentication,
    setup_intents_cancel,
    setup_intents_confirm,
    setup_intents_create,
    setup_intents_list,
    setup_intents_retrieve,
)

# Within a method the first matching route wins; the resources' paths do not overlap, so only
# the order inside a module matters (``/v1/payment_intents/search`` before ``/{id}``).
ROUTES: list[Route] = [
    *customers.ROUTES,
    *payment_methods.ROUTES,
    *setup_intents.ROUTES,
    *payment_intents.ROUTES,
    *charges.ROUTES,
    *refunds.ROUTES,
    *events.ROUTES,
    *connect.ROUTES,
    *transfers.ROUTES,
    *balance.ROUTES,
]

__all__ = [
    "ACCOUNT_SCOPED", "close_dispute", "release_funds", "restrict_account", "settle_payout",
    "AUTH_FAILURE_MESSAGE", "CANCELLATION_REASONS", "CONFIRMABLE", "CURRENCIES", "MAX_AMOUNT",
    "MIN_AMOUNT", "REFUND_REASONS", "ROUTES", "Operation", "Route",
    "account_links_create", "accounts_create", "accounts_retrieve",
    "balance_transactions_retrieve", "charges_list", "charges_retrieve",
    "complete_onboarding", "complete_pi_authentication", "complete_si_authentication",
    "create_dispute", "customers_create", "customers_delete", "customers_list",
    "customers_list_payment_methods", "customers_retrieve", "customers_update",
    "disputes_retrieve", "events_list", "events_retrieve", "fail_refund",
    "payment_intents_cancel", "payment_intents_capture", "payment_intents_confirm",
    "payment_intents_create", "payment_intents_list", "payment_intents_retrieve",
    "payment_intents_search", "payment_intents_update", "payment_methods_attach",
    "payment_methods_create", "payment_methods_detach", "payment_methods_list",
    "payment_methods_retrieve", "payment_methods_update", "refunds_create", "refunds_list",
    "refunds_retrieve", "refunds_update", "setup_intents_cancel", "setup_intents_confirm",
    "setup_intents_create", "setup_intents_list", "setup_intents_retrieve",
]
