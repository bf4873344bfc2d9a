"""Connect, the basics: accounts (create, retrieve), account links (create: a URL to the
emulator's onboarding page) and ``complete_onboarding``, what finishing that page does
(charges and payouts enabled, ``account.updated``). There are no transfer, payout or
application fee objects: ``transfer_data`` and ``application_fee_amount`` are only stored on the
PaymentIntent and its charge.
"""

from __future__ import annotations

from .. import objects
from ..errors import missing, param_missing
from ..params import get_dict, get_enum, get_str, merge_metadata
from ..store import Context, State
from ._common import Route, _require


def accounts_create(st: State, ctx: Context, p: dict) -> dict:
    type_ = get_enum(p, "type", ("standard", "express", "custom"), "standard")
    capabilities = {name: "inactive" for name in get_dict(p, "capabilities")}
    acct = objects.account(acctid=objects.new_id("acct", 16), now=st.now(), type_=type_,
                           country=get_str(p, "country", "US"), email=get_str(p, "email"),
                           metadata=merge_metadata({}, p), capabilities=capabilities)
    return st.add(acct)


def accounts_retrieve(st: State, ctx: Context, p: dict, acct_id: str) -> dict:
    return _require(st, "account", acct_id)


def account_links_create(st: State, ctx: Context, p: dict) -> dict:
    acct_id = get_str(p, "account")
    if acct_id is None:
        raise param_missing("account")
    _require(st, "account", acct_id, param="account")
    get_enum(p, "type", ("account_onboarding", "account_update"), "account_onboarding")
    token = objects.new_id("link")
    st.account_links[token] = {"account": acct_id, "return_url": get_str(p, "return_url"),
                               "refresh_url": get_str(p, "refresh_url")}
    return objects.account_link(now=st.now(),
                                url=f"{ctx.base_url}/_emulator/connect/onboard/{token}")


def complete_onboarding(st: State, ctx: Context, acct_id: str) -> dict:
    acct = st.get("account", acct_id)
    if acct is None:
        raise missing("account", acct_id)
    acct["charges_enabled"] = acct["payouts_enabled"] = acct["details_submitted"] = True
    acct["capabilities"] = {k: "active" for k in acct["capabilities"]} or {
        "card_payments": "active", "transfers": "active"}
    req = acct["requirements"]
    req["currently_due"], req["eventually_due"], req["past_due"] = [], [], []
    req["disabled_reason"] = None
    st.record_event(ctx, "account.updated", acct)
    return acct


ROUTES: list[Route] = [
    ("POST", "/v1/accounts", "accounts.create", accounts_create),
    ("GET", "/v1/accounts/{id}", "accounts.retrieve", accounts_retrieve),
    ("POST", "/v1/account_links", "account_links.create", account_links_create),
]
