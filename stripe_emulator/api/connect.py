"""Connect accounts, as Stripe's Connect docs describe them for a marketplace:

- **Accounts** (create, retrieve, update, list). Created with ``controller`` properties, the way
  Stripe recommends for new platforms ("Migrate to controller properties"): ``fees[payer]``,
  ``losses[payments]``, ``requirement_collection``, ``stripe_dashboard[type]``, with Stripe's
  rules (not together with ``type``; ``losses[payments]=application`` needs
  ``fees[payer]=application``; ``requirement_collection=application`` needs
  ``losses[payments]=application`` and ``stripe_dashboard[type]=none``). Such an account's
  ``type`` is ``none``; one created with a legacy ``type`` gets that type's controller properties
  (express: Express dashboard, the platform pays the fees and carries the losses).
- **Capabilities** ``card_payments`` and ``transfers`` (``capabilities[x][requested]``; asking for
  ``card_payments`` needs ``transfers`` too), listed and retrieved as ``capability`` objects, and
  updated (requested or not). ``inactive`` until onboarding is complete, then ``active``.
- **Requirements**: what is due until onboarding (``currently_due``, ``past_due``,
  ``disabled_reason``), nothing after.
- **Account links** (``account_onboarding`` / ``account_update``): a URL to the emulator's hosted
  onboarding page, valid for 300 seconds and once, as Stripe's are; a used or expired link
  sends the browser to ``refresh_url``.
- ``complete_onboarding``: what finishing that page does (details submitted, capabilities
  active, charges and payouts enabled, a test bank account attached, requirements cleared);
  ``restrict_account``: the account loses its capabilities (requirements past due, charges and
  payouts disabled). Each records ``account.updated`` with ``previous_attributes`` and the
  account's id as the event's ``account``.
"""

from __future__ import annotations

from typing import Optional

from .. import objects
from ..errors import invalid, param_missing
from ..params import get_bool, get_dict, get_enum, get_str, merge_metadata
from ..store import Context, State, snapshot
from ._common import Route, _page, _require

CAPABILITIES = ("card_payments", "transfers")
DUE = ["business_profile.url", "external_account", "individual.first_name",
       "individual.last_name", "tos_acceptance.date", "tos_acceptance.ip"]

# The controller properties of each legacy account type (Stripe's mapping table).
LEGACY_CONTROLLER = {
    "express": {"fees": {"payer": "application_express"}, "losses": {"payments": "application"},
                "requirement_collection": "stripe", "stripe_dashboard": {"type": "express"}},
    "standard": {"fees": {"payer": "account"}, "losses": {"payments": "stripe"},
                 "requirement_collection": "stripe", "stripe_dashboard": {"type": "full"}},
    "custom": {"fees": {"payer": "application_custom"}, "losses": {"payments": "application"},
               "requirement_collection": "application", "stripe_dashboard": {"type": "none"}},
}


def _controller(p: dict) -> tuple[str, dict]:
    """(type, controller) from the create parameters."""
    has_type = "type" in p
    if has_type and "controller" in p:
        raise invalid("You cannot specify both `type` and `controller`. Use `controller` to "
                      "configure the account.", param="controller")
    if has_type:
        type_ = get_enum(p, "type", ("standard", "express", "custom"))
        return type_, {"is_controller": True, "type": "application",
                       **snapshot(LEGACY_CONTROLLER[type_])}
    c = get_dict(p, "controller")
    payer = get_enum(get_dict(c, "fees"), "payer", ("account", "application"), "account",
                     param="controller[fees][payer]")
    losses = get_enum(get_dict(c, "losses"), "payments", ("application", "stripe"), "stripe",
                      param="controller[losses][payments]")
    collection = get_enum(c, "requirement_collection", ("application", "stripe"), "stripe",
                          param="controller[requirement_collection]")
    dashboard = get_enum(get_dict(c, "stripe_dashboard"), "type", ("express", "full", "none"),
                         "full", param="controller[stripe_dashboard][type]")
    if losses == "application" and payer != "application":
        raise invalid("Setting `controller[losses][payments]=application` requires "
                      "`controller[fees][payer]=application`.",
                      param="controller[losses][payments]")
    if collection == "application" and (losses != "application" or dashboard != "none"):
        raise invalid("`controller[requirement_collection]=application` requires "
                      "`controller[losses][payments]=application` and "
                      "`controller[stripe_dashboard][type]=none`.",
                      param="controller[requirement_collection]")
    if payer == "application" and dashboard == "express":
        payer = "application_express"  # as Stripe reports the Express pricing
    elif payer == "application" and dashboard == "none":
        payer = "application_custom"
    return "none", {"fees": {"payer": payer}, "is_controller": True,
                    "losses": {"payments": losses}, "requirement_collection": collection,
                    "stripe_dashboard": {"type": dashboard}, "type": "application"}


def _requested_capabilities(p: dict) -> dict[str, bool]:
    out = {}
    for name, spec in get_dict(p, "capabilities").items():
        if name not in CAPABILITIES:
            raise invalid(f"Invalid capability: {name}. The emulator supports "
                          f"{', '.join(CAPABILITIES)}.", param=f"capabilities[{name}]")
        if not isinstance(spec, dict):
            raise invalid(f"Invalid object: capabilities[{name}] must be an object.",
                          param=f"capabilities[{name}]", cacheable=False)
        out[name] = get_bool(spec, "requested", param=f"capabilities[{name}][requested]")
    return out


def _check_capability_pair(requested: dict[str, str]) -> None:
    if "card_payments" in requested and "transfers" not in requested:
        raise invalid("The `card_payments` capability requires the `transfers` capability: "
                      "request both.", param="capabilities[transfers][requested]")


def accounts_create(st: State, ctx: Context, p: dict) -> dict:
    type_, controller = _controller(p)
    wanted = _requested_capabilities(p)
    capabilities = {name: "inactive" for name, on in wanted.items() if on}
    _check_capability_pair(capabilities)
    acct = objects.account(acctid=objects.new_id("acct", 16), now=st.now(), type_=type_,
                           country=get_str(p, "country", "US"), email=get_str(p, "email"),
                           metadata=merge_metadata({}, p), capabilities=capabilities,
                           controller=controller)
    acct["requirements"] = _due_requirements()
    st.capability_requested_at[acct["id"]] = {name: acct["created"] for name in capabilities}
    return st.add(acct)


def _due_requirements(due: list[str] = DUE) -> dict:
    return {"alternatives": [], "current_deadline": None, "currently_due": list(due),
            "disabled_reason": "requirements.past_due", "errors": [],
            "eventually_due": list(due), "past_due": list(due), "pending_verification": []}


def accounts_retrieve(st: State, ctx: Context, p: dict, acct_id: str) -> dict:
    return _require(st, "account", acct_id)


def accounts_update(st: State, ctx: Context, p: dict, acct_id: str) -> dict:
    acct = _require(st, "account", acct_id)
    previous: dict = {}
    if "email" in p:
        previous["email"] = acct["email"]
        acct["email"] = get_str(p, "email")
    if "metadata" in p:
        previous["metadata"] = dict(acct["metadata"])
        acct["metadata"] = merge_metadata(acct["metadata"], p)
    wanted = _requested_capabilities(p)
    if wanted:
        previous["capabilities"] = dict(acct["capabilities"])
        caps = dict(acct["capabilities"])
        for name, on in wanted.items():
            if on:
                caps.setdefault(name, "active" if acct["details_submitted"] else "inactive")
                st.capability_requested_at.setdefault(acct_id, {}).setdefault(name, st.now())
            else:
                caps.pop(name, None)
                st.capability_requested_at.get(acct_id, {}).pop(name, None)
        _check_capability_pair(caps)
        acct["capabilities"] = caps
        _sync_enabled(acct)
    if previous:
        st.record_event(ctx, "account.updated", acct, previous_attributes=previous,
                        account=acct_id)
    return acct


def _sync_enabled(acct: dict) -> None:
    caps = acct["capabilities"]
    acct["charges_enabled"] = caps.get("card_payments") == "active" or (
        "card_payments" not in caps and caps.get("transfers") == "active")
    acct["payouts_enabled"] = acct["details_submitted"] and not acct["requirements"]["past_due"]


def accounts_list(st: State, ctx: Context, p: dict) -> dict:
    return _page(st, st.lists["account"], "/v1/accounts", p)


def _capability(st: State, acct: dict, name: str) -> dict:
    status = acct["capabilities"].get(name)
    requested_at = st.capability_requested_at.get(acct["id"], {}).get(name)
    reqs = objects._empty_requirements()
    if status != "active":
        reqs = snapshot(acct["requirements"])
        # A capability names its own reasons: fields still needed (before onboarding, or once
        # requirements fell past due).
        reqs["disabled_reason"] = "requirements.fields_needed"
    return objects.capability(account_id=acct["id"], name=name, status=status or "inactive",
                              requested=status is not None, requested_at=requested_at,
                              requirements=reqs)


def capabilities_list(st: State, ctx: Context, p: dict, acct_id: str) -> dict:
    acct = _require(st, "account", acct_id)
    data = [_capability(st, acct, name) for name in sorted(acct["capabilities"])]
    return objects.list_object(f"/v1/accounts/{acct_id}/capabilities", data, False)


def _capability_name(acct_id: str, name: str) -> str:
    if name not in CAPABILITIES:
        raise invalid(f"No such capability: '{name}'", code="resource_missing", status=404)
    return name


def capabilities_retrieve(st: State, ctx: Context, p: dict, acct_id: str, name: str) -> dict:
    acct = _require(st, "account", acct_id)
    return _capability(st, acct, _capability_name(acct_id, name))


def capabilities_update(st: State, ctx: Context, p: dict, acct_id: str, name: str) -> dict:
    acct = _require(st, "account", acct_id)
    _capability_name(acct_id, name)
    if "requested" in p:
        accounts_update(st, ctx, {"capabilities": {name: {"requested": p["requested"]}}},
                        acct_id)
    return _capability(st, acct, name)


def account_links_create(st: State, ctx: Context, p: dict) -> dict:
    acct_id = get_str(p, "account")
    if acct_id is None:
        raise param_missing("account")
    _require(st, "account", acct_id, param="account")
    link_type = get_str(p, "type")
    if link_type is None:
        raise param_missing("type")
    get_enum(p, "type", ("account_onboarding", "account_update"))
    refresh_url, return_url = get_str(p, "refresh_url"), get_str(p, "return_url")
    if return_url is None:
        raise param_missing("return_url")
    if refresh_url is None:
        raise param_missing("refresh_url")
    token = objects.new_id("link")
    now = st.now()
    st.account_links[token] = {"account": acct_id, "return_url": return_url,
                               "refresh_url": refresh_url, "expires_at": now + 300,
                               "used": False}
    return objects.account_link(now=now,
                                url=f"{ctx.base_url}/_emulator/connect/onboard/{token}")


def link_state(st: State, token: str) -> Optional[str]:
    """None for a link that can be used now, else why not: "unknown", "used" or "expired"."""
    link = st.account_links.get(token)
    if link is None:
        return "unknown"
    if link.get("used"):
        return "used"
    if st.now() > link.get("expires_at", float("inf")):
        return "expired"
    return None


def complete_onboarding(st: State, ctx: Context, acct_id: str) -> dict:
    acct = _require(st, "account", acct_id)
    previous = {"capabilities": dict(acct["capabilities"]),
                "charges_enabled": acct["charges_enabled"],
                "details_submitted": acct["details_submitted"],
                "payouts_enabled": acct["payouts_enabled"],
                "requirements": snapshot(acct["requirements"])}
    acct["details_submitted"] = True
    caps = acct["capabilities"] or {"card_payments": "inactive", "transfers": "inactive"}
    acct["capabilities"] = {k: "active" for k in caps}
    for name in acct["capabilities"]:
        st.capability_requested_at.setdefault(acct_id, {}).setdefault(name, st.now())
    acct["requirements"] = objects._empty_requirements()
    acct["tos_acceptance"] = {"date": st.now(), "ip": "127.0.0.1", "user_agent": None}
    externals = acct["external_accounts"]
    if not externals["data"]:
        externals["data"] = [objects.bank_account(baid=objects.new_id("ba"), account_id=acct_id)]
    _sync_enabled(acct)
    st.record_event(ctx, "account.updated", acct, previous_attributes=previous,
                    account=acct_id)
    return acct


def restrict_account(st: State, ctx: Context, acct_id: str) -> dict:
    """Emulator-only: the account's requirements fall past due (Stripe could not verify it):
    capabilities inactive, charges and payouts disabled, ``account.updated``."""
    acct = _require(st, "account", acct_id)
    previous = {"capabilities": dict(acct["capabilities"]),
                "charges_enabled": acct["charges_enabled"],
                "payouts_enabled": acct["payouts_enabled"],
                "requirements": snapshot(acct["requirements"])}
    acct["capabilities"] = {k: "inactive" for k in acct["capabilities"]}
    acct["requirements"] = _due_requirements(["individual.verification.document"])
    _sync_enabled(acct)
    st.record_event(ctx, "account.updated", acct, previous_attributes=previous,
                    account=acct_id)
    return acct


def transfers_capable(st: State, acct_id: str) -> bool:
    acct = st.get("account", acct_id)
    return acct is not None and acct["capabilities"].get("transfers") == "active"


def require_transfers_capability(st: State, acct_id: str, param: str) -> dict:
    """The destination of a transfer or destination charge, which must exist and have the
    ``transfers`` capability active (else Stripe's ``insufficient_capabilities_for_transfer``)."""
    acct = _require(st, "account", acct_id, param=param)
    if acct["capabilities"].get("transfers") != "active":
        raise invalid("Your destination account needs to have at least one of the following "
                      "capabilities enabled: transfers, crypto_transfers, legacy_payments",
                      param=param, code="insufficient_capabilities_for_transfer")
    return acct


ROUTES: list[Route] = [
    ("POST", "/v1/accounts", "accounts.create", accounts_create),
    ("GET", "/v1/accounts", "accounts.list", accounts_list),
    ("GET", "/v1/accounts/{id}", "accounts.retrieve", accounts_retrieve),
    ("POST", "/v1/accounts/{id}", "accounts.update", accounts_update),
    ("GET", "/v1/accounts/{id}/capabilities", "account_capabilities.list", capabilities_list),
    ("GET", "/v1/accounts/{id}/capabilities/{id}", "account_capabilities.retrieve",
     capabilities_retrieve),
    ("POST", "/v1/accounts/{id}/capabilities/{id}", "account_capabilities.update",
     capabilities_update),
    ("POST", "/v1/account_links", "account_links.create", account_links_create),
]
