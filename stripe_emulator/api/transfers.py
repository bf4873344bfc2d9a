"""Connect money movement, as Stripe's "Destination charges", "Separate charges and transfers",
"Transfer reversals" and "Collect application fees" docs describe it:

- **Destination charges**: a PaymentIntent with ``transfer_data[destination]`` (the account must
  have ``transfers`` active; ``on_behalf_of``, when given, must be that account and have
  ``card_payments`` active) creates, when its charge is captured, the transfer of the whole
  amount (or ``transfer_data[amount]``) to the account, linked to the charge
  (``source_transaction``, ``charge.transfer``), and the account's payment ``py_``. With
  ``application_fee_amount`` (not with ``transfer_data[amount]``, and not above the amount) the
  fee comes back from that payment as an ``application_fee`` (``charge.application_fee``; on the
  account's ledger the payment's fee; on the platform's, ``application_fee``).
- **Transfers** (create, retrieve, update, list by ``destination`` / ``transfer_group``): from
  the platform's available balance (``balance_insufficient`` beyond it), or tied to a charge with
  ``source_transaction`` (then only up to what of that charge is neither refunded nor already
  transferred; its funds follow the charge's availability). ``transfer.created``.
- **Transfer reversals** (create, retrieve, list), whole or partial: the platform gets the
  money back (``transfer_refund``), the account's payment is refunded (``pyr_``,
  ``payment_refund``); ``refund_application_fee`` refunds the fee in proportion.
  ``transfer.reversed``.
- **Refunds of a destination charge** (``refunds.create``): ``reverse_transfer`` reverses the
  transfer and ``refund_application_fee`` refunds the fee, each in proportion to the charge's
  refunded total (rounded half up on the cumulative total, so partial refunds add up to the
  whole to the cent); ``refund.transfer_reversal`` names the reversal.
- **Application fees** (retrieve, list by ``charge``) and their refunds (create, retrieve,
  list): the platform gives the fee back to the account. ``application_fee.created``,
  ``application_fee.refunded``.
"""

from __future__ import annotations

from typing import Optional

from .. import objects
from ..errors import invalid, missing, param_missing
from ..params import get_bool, get_int, get_str, merge_metadata
from ..store import Context, IdList, State
from ._common import Route, _currency, _page, _require
from .balance import INSUFFICIENT, book, totals
from .connect import require_transfers_capability


def _proportion(total: int, part: int, whole: int) -> int:
    """``total * part / whole`` rounded half up, in integers."""
    return (2 * total * part + whole) // (2 * whole) if whole else 0


# index -> (the kind of object it lists, the field naming the parent)
_CHILDREN = {"transfer_by_destination": ("transfer", "destination"),
             "transfer_by_source": ("transfer", "source_transaction"),
             "transfer_reversal": ("transfer_reversal", "transfer"),
             "fee_refund": ("fee_refund", "fee")}


def _child_list(st: State, kind: str, parent: str) -> IdList:
    """The ids of ``parent``'s children, oldest first. Built from the objects the first time
    (the state file keeps objects, not these indexes: after a load they are found again)."""
    key = (kind, parent)
    ids = st.by_parent.get(key)
    if ids is None:
        ids = st.by_parent[key] = IdList()
        child_kind, field = _CHILDREN[kind]
        for i in st.lists[child_kind].ids:
            obj = st.objects[i]
            if obj.get(field) == parent:
                ids.append(i, obj.get("created"))
    return ids


def _refresh_list(st: State, obj: dict, field: str, kind: str, url: str) -> None:
    ids = _child_list(st, kind, obj["id"]) if kind in _CHILDREN else st.by_parent.get(
        (kind, obj["id"]))
    page, has_more = ids.page(10, None, None) if ids else ([], False)
    obj[field] = objects.list_object(url, [st.objects[i] for i in page], has_more)


# --- creation ---------------------------------------------------------------------------------

def create_transfer(st: State, ctx: Context, *, amount: int, currency: str, destination: str,
                    source_charge: Optional[dict], transfer_group: Optional[str],
                    description: Optional[str], metadata: dict,
                    application_fee_amount: Optional[int] = None) -> dict:
    """The transfer, the account's payment ``py_`` (less the application fee, if any) and, with
    a fee, the application fee; each with its balance transactions and events."""
    now = st.now()
    trid, pyid = objects.new_id("tr"), objects.new_id("py")
    available_on = None
    if source_charge is not None and source_charge.get("balance_transaction"):
        available_on = st.objects[source_charge["balance_transaction"]]["available_on"]
    elif source_charge is None:
        available_on = now  # paid from the available balance
    # With a source_transaction the transfer is paid from that charge's funds, pending or not
    # (its debit follows them); otherwise from the available balance, at once.
    tr_txn = book(st, None, amount=-amount, type_="transfer", source=trid, currency=currency,
                  available_on=available_on)
    fee = None
    fee_details = []
    if application_fee_amount:
        fee_details = [{"amount": application_fee_amount, "application": objects.APPLICATION_ID,
                        "currency": currency, "description": "Application fee",
                        "type": "application_fee"}]
    py_txn = book(st, destination, amount=amount, type_="payment", source=pyid,
                  fee_details=fee_details, currency=currency, available_on=available_on)
    if application_fee_amount:
        feeid = objects.new_id("fee")
        fee_txn = book(st, None, amount=application_fee_amount, type_="application_fee",
                       source=feeid, currency=currency, available_on=available_on)
        fee = objects.application_fee(
            feeid=feeid, now=now, amount=application_fee_amount, currency=currency,
            account_id=destination, charge_id=pyid,
            originating_transaction=source_charge["id"] if source_charge else pyid,
            balance_transaction=fee_txn["id"])
    py = objects.destination_payment(pyid=pyid, now=now, amount=amount, currency=currency,
                                     transfer_id=trid, balance_transaction=py_txn["id"],
                                     destination=destination,
                                     application_fee=fee["id"] if fee else None,
                                     application_fee_amount=application_fee_amount)
    st.add(py, account=destination)
    tr = objects.transfer(trid=trid, now=now, amount=amount, currency=currency,
                          destination=destination, destination_payment=pyid,
                          balance_transaction=tr_txn["id"],
                          source_transaction=source_charge["id"] if source_charge else None,
                          transfer_group=transfer_group, description=description,
                          metadata=metadata)
    st.add(tr)
    _child_list(st, "transfer_by_destination", destination).append(trid, now)
    if source_charge is not None:
        _child_list(st, "transfer_by_source", source_charge["id"]).append(trid, now)
    st.record_event(ctx, "transfer.created", tr)
    if fee is not None:
        st.add(fee)
        st.record_event(ctx, "application_fee.created", fee)
    return tr


def check_destination_charge(st: State, p: dict, amount: int) -> None:
    """What a PaymentIntent's Connect parameters must satisfy (at create)."""
    td = p.get("transfer_data")
    fee = get_int(p, "application_fee_amount")
    on_behalf_of = get_str(p, "on_behalf_of")
    destination = td.get("destination") if isinstance(td, dict) else None
    if fee is not None:
        if destination is None:
            raise invalid("Can only apply an application_fee_amount when the PaymentIntent is "
                          "attempting a direct payment (using an OAuth key or Stripe-Account "
                          "header) or destination payment (using `transfer_data[destination]`).",
                          param="application_fee_amount")
        if fee < 0 or fee > amount:
            raise invalid("The application_fee_amount must be a non-negative integer no greater "
                          "than the amount.", param="application_fee_amount")
        if isinstance(td, dict) and td.get("amount") not in (None, ""):
            raise invalid("You cannot specify both `application_fee_amount` and "
                          "`transfer_data[amount]`.", param="application_fee_amount")
    if destination is not None:
        require_transfers_capability(st, destination, "transfer_data[destination]")
        td_amount = get_int(td, "amount")
        if td_amount is not None and not 0 < td_amount <= amount:
            raise invalid("transfer_data[amount] must be positive and no greater than the "
                          "amount.", param="transfer_data[amount]")
    if on_behalf_of is not None:
        acct = _require(st, "account", on_behalf_of, param="on_behalf_of")
        if destination is not None and on_behalf_of != destination:
            raise invalid("`on_behalf_of` must be the same account as "
                          "`transfer_data[destination]`.", param="on_behalf_of")
        if acct["capabilities"].get("card_payments") != "active":
            raise invalid(f"The account {on_behalf_of} needs the `card_payments` capability "
                          f"active to be the settlement merchant (on_behalf_of).",
                          param="on_behalf_of", code="insufficient_capabilities_for_transfer")


def destination_charge_captured(st: State, ctx: Context, pi: dict, ch: dict) -> None:
    """A destination charge's money moved: its transfer (and application fee)."""
    td = pi.get("transfer_data")
    if not td:
        return
    captured = ch["amount_captured"]
    amount = td.get("amount") or captured
    fee_amount = pi.get("application_fee_amount")
    tr = create_transfer(st, ctx, amount=min(amount, captured), currency=ch["currency"],
                         destination=td["destination"], source_charge=ch,
                         transfer_group=pi.get("transfer_group") or f"group_{pi['id']}",
                         description=None, metadata={},
                         application_fee_amount=min(fee_amount, captured) if fee_amount else None)
    ch["transfer"] = tr["id"]
    ch["transfer_group"] = tr["transfer_group"]
    pi["transfer_group"] = tr["transfer_group"]
    py = st.objects[tr["destination_payment"]]
    ch["application_fee"] = py["application_fee"]


# --- reversals and fee refunds ----------------------------------------------------------------

def reverse(st: State, ctx: Context, tr: dict, amount: int, *, source_refund: Optional[str],
            metadata: dict) -> dict:
    now = st.now()
    trrid, pyrid = objects.new_id("trr"), objects.new_id("pyr")
    destination = tr["destination"]
    txn = book(st, None, amount=amount, type_="transfer_refund", source=trrid, at_once=True,
               currency=tr["currency"])
    py = st.objects[tr["destination_payment"]]
    py_txn = book(st, destination, amount=-amount, type_="payment_refund", source=pyrid,
                  currency=tr["currency"])
    pyr = objects.refund(reid=pyrid, now=now, amount=amount, ch=py, reason=None, metadata={},
                         balance_transaction=py_txn["id"])
    pyr["source_transfer_reversal"] = trrid
    st.add(pyr, account=destination)
    py["amount_refunded"] += amount
    py["refunded"] = py["amount_refunded"] >= py["amount"]
    _refresh_list(st, py, "refunds", "refund", f"/v1/charges/{py['id']}/refunds")
    trr = objects.transfer_reversal(trrid=trrid, now=now, amount=amount,
                                    currency=tr["currency"], transfer_id=tr["id"],
                                    balance_transaction=txn["id"],
                                    destination_payment_refund=pyrid, source_refund=source_refund,
                                    metadata=metadata)
    st.add(trr)
    _child_list(st, "transfer_reversal", tr["id"]).append(trrid, now)
    tr["amount_reversed"] += amount
    tr["reversed"] = tr["amount_reversed"] >= tr["amount"]
    _refresh_list(st, tr, "reversals", "transfer_reversal", f"/v1/transfers/{tr['id']}/reversals")
    st.record_event(ctx, "transfer.reversed", tr)
    return trr


def refund_fee(st: State, ctx: Context, fee: dict, amount: int, metadata: dict) -> dict:
    now = st.now()
    frid = objects.new_id("fr")
    txn = book(st, None, amount=-amount, type_="application_fee_refund", source=frid,
               currency=fee["currency"])
    book(st, fee["account"], amount=amount, type_="application_fee_refund", source=frid,
         at_once=True, currency=fee["currency"])
    fr = objects.fee_refund(frid=frid, now=now, amount=amount, currency=fee["currency"],
                            fee_id=fee["id"], balance_transaction=txn["id"], metadata=metadata)
    st.add(fr)
    _child_list(st, "fee_refund", fee["id"]).append(frid, now)
    previous = {"amount_refunded": fee["amount_refunded"], "refunded": fee["refunded"]}
    fee["amount_refunded"] += amount
    fee["refunded"] = fee["amount_refunded"] >= fee["amount"]
    _refresh_list(st, fee, "refunds", "fee_refund", f"/v1/application_fees/{fee['id']}/refunds")
    st.record_event(ctx, "application_fee.refunded", fee, previous_attributes=previous)
    return fr


def check_refund_options(ch: dict, p: dict) -> tuple[bool, bool]:
    """(reverse_transfer, refund_application_fee) of a refund, each allowed only where the
    charge has a transfer / an application fee."""
    reverse_transfer = get_bool(p, "reverse_transfer")
    refund_app_fee = get_bool(p, "refund_application_fee")
    if reverse_transfer and not ch.get("transfer"):
        raise invalid(f"Charge {ch['id']} has no transfer to reverse: reverse_transfer applies "
                      f"to destination charges only.", param="reverse_transfer")
    if refund_app_fee and not ch.get("application_fee"):
        raise invalid(f"Charge {ch['id']} has no application fee to refund.",
                      param="refund_application_fee")
    return reverse_transfer, refund_app_fee


def refund_connect_shares(st: State, ctx: Context, ch: dict, re: dict, reverse_transfer: bool,
                          refund_app_fee: bool) -> None:
    """After ``re`` raised the charge's ``amount_refunded``: reverse the transfer and refund the
    fee in proportion to the refunded total (cumulative, so the parts add up to the whole)."""
    refunded, captured = ch["amount_refunded"], ch["amount_captured"]
    if reverse_transfer:
        tr = st.objects[ch["transfer"]]
        done = st.connect_totals.get(f"refund_reversed:{ch['id']}", 0)
        amount = min(_proportion(refunded, tr["amount"], captured) - done,
                     tr["amount"] - tr["amount_reversed"])
        if amount > 0:
            trr = reverse(st, ctx, tr, amount, source_refund=re["id"], metadata={})
            re["transfer_reversal"] = trr["id"]
            st.connect_totals[f"refund_reversed:{ch['id']}"] = done + amount
    if refund_app_fee:
        fee = st.objects[ch["application_fee"]]
        done = st.connect_totals.get(f"refund_fee_refunded:{ch['id']}", 0)
        amount = min(_proportion(refunded, fee["amount"], captured) - done,
                     fee["amount"] - fee["amount_refunded"])
        if amount > 0:
            refund_fee(st, ctx, fee, amount, {})
            st.connect_totals[f"refund_fee_refunded:{ch['id']}"] = done + amount


# --- the API ----------------------------------------------------------------------------------

def _positive(p: dict, name: str, default: Optional[int] = None) -> int:
    value = get_int(p, name, default)
    if value is None:
        raise param_missing(name)
    if value <= 0:
        raise invalid(f"Invalid {name}: must be a positive integer.", param=name,
                      code="parameter_invalid_integer")
    return value


def transfers_create(st: State, ctx: Context, p: dict) -> dict:
    amount = _positive(p, "amount")
    currency = _currency(p)
    destination = get_str(p, "destination")
    if destination is None:
        raise param_missing("destination")
    require_transfers_capability(st, destination, "destination")
    source_id = get_str(p, "source_transaction")
    source = None
    if source_id is not None:
        source = st.owned("charge", source_id, None)
        if source is None:
            raise missing("charge", source_id, param="source_transaction")
        if not source["paid"] or not source["captured"]:
            raise invalid(f"The source_transaction {source_id} has not succeeded; only a "
                          f"captured charge can fund a transfer.", param="source_transaction")
        already = sum(st.objects[i]["amount"] for i in
                      _child_list(st, "transfer_by_source", source_id).ids)
        left = source["amount_captured"] - source["amount_refunded"] - already
        if amount > left:
            raise invalid(f"The transfer amount (${amount / 100:.2f}) exceeds what is left of "
                          f"source_transaction {source_id} (${max(left, 0) / 100:.2f}).",
                          param="amount", code="amount_too_large")
    else:
        available, _ = totals(st, None)
        if amount > available:
            raise invalid(INSUFFICIENT, code="balance_insufficient")
    return create_transfer(st, ctx, amount=amount, currency=currency, destination=destination,
                           source_charge=source, transfer_group=get_str(p, "transfer_group"),
                           description=get_str(p, "description"),
                           metadata=merge_metadata({}, p))


def transfers_retrieve(st: State, ctx: Context, p: dict, tr_id: str) -> dict:
    return _require(st, "transfer", tr_id)


def transfers_update(st: State, ctx: Context, p: dict, tr_id: str) -> dict:
    tr = _require(st, "transfer", tr_id)
    previous = {"metadata": dict(tr["metadata"])}
    if "description" in p:
        previous["description"] = tr["description"]
        tr["description"] = get_str(p, "description")
    tr["metadata"] = merge_metadata(tr["metadata"], p)
    st.record_event(ctx, "transfer.updated", tr, previous_attributes=previous)
    return tr


def transfers_list(st: State, ctx: Context, p: dict) -> dict:
    destination, group = get_str(p, "destination"), get_str(p, "transfer_group")
    ids = (_child_list(st, "transfer_by_destination", destination) if destination
           else st.lists["transfer"])
    keep = (lambda i: st.objects[i]["transfer_group"] == group) if group else None
    return _page(st, ids, "/v1/transfers", p, keep)


def reversals_create(st: State, ctx: Context, p: dict, tr_id: str) -> dict:
    tr = _require(st, "transfer", tr_id)
    left = tr["amount"] - tr["amount_reversed"]
    if left <= 0:
        raise invalid(f"Transfer {tr_id} has already been fully reversed.")
    amount = _positive(p, "amount", left)
    if amount > left:
        raise invalid(f"The reversal amount (${amount / 100:.2f}) is greater than what is left "
                      f"of the transfer (${left / 100:.2f}).", param="amount",
                      code="amount_too_large")
    trr = reverse(st, ctx, tr, amount, source_refund=None, metadata=merge_metadata({}, p))
    if get_bool(p, "refund_application_fee"):
        fee_id = st.objects[tr["destination_payment"]].get("application_fee")
        if fee_id:
            fee = st.objects[fee_id]
            done = st.connect_totals.get(f"reversal_fee_refunded:{tr_id}", 0)
            share = min(_proportion(tr["amount_reversed"], fee["amount"], tr["amount"]) - done,
                        fee["amount"] - fee["amount_refunded"])
            if share > 0:
                refund_fee(st, ctx, fee, share, {})
                st.connect_totals[f"reversal_fee_refunded:{tr_id}"] = done + share
    return trr


def _child(st: State, parent_kind: str, parent_id: str, kind: str, child_id: str, field: str) -> dict:
    """A nested object (a transfer's reversal, a fee's refund) of that very parent, else 404."""
    _require(st, parent_kind, parent_id)
    child = st.get(kind, child_id)
    if child is None or child[field] != parent_id:
        raise missing(kind, child_id)
    return child


def reversals_retrieve(st: State, ctx: Context, p: dict, tr_id: str, trr_id: str) -> dict:
    return _child(st, "transfer", tr_id, "transfer_reversal", trr_id, "transfer")


def reversals_list(st: State, ctx: Context, p: dict, tr_id: str) -> dict:
    _require(st, "transfer", tr_id)
    return _page(st, _child_list(st, "transfer_reversal", tr_id),
                 f"/v1/transfers/{tr_id}/reversals", p)


def application_fees_retrieve(st: State, ctx: Context, p: dict, fee_id: str) -> dict:
    return _require(st, "application_fee", fee_id)


def application_fees_list(st: State, ctx: Context, p: dict) -> dict:
    charge = get_str(p, "charge")
    if charge is not None:
        # By the platform's charge (originating_transaction) or the account's payment.
        def keep(i: str) -> bool:
            fee = st.objects[i]
            return charge in (fee["originating_transaction"], fee["charge"])
        return _page(st, st.lists["application_fee"], "/v1/application_fees", p, keep)
    return _page(st, st.lists["application_fee"], "/v1/application_fees", p)


def fee_refunds_create(st: State, ctx: Context, p: dict, fee_id: str) -> dict:
    fee = _require(st, "application_fee", fee_id)
    left = fee["amount"] - fee["amount_refunded"]
    if left <= 0:
        raise invalid(f"Application fee {fee_id} has already been refunded.",
                      code="charge_already_refunded")
    amount = _positive(p, "amount", left)
    if amount > left:
        raise invalid(f"Refund amount (${amount / 100:.2f}) is greater than the unrefunded "
                      f"amount of the fee (${left / 100:.2f}).", param="amount",
                      code="amount_too_large")
    return refund_fee(st, ctx, fee, amount, merge_metadata({}, p))


def fee_refunds_retrieve(st: State, ctx: Context, p: dict, fee_id: str, fr_id: str) -> dict:
    return _child(st, "application_fee", fee_id, "fee_refund", fr_id, "fee")


def fee_refunds_list(st: State, ctx: Context, p: dict, fee_id: str) -> dict:
    _require(st, "application_fee", fee_id)
    return _page(st, _child_list(st, "fee_refund", fee_id),
                 f"/v1/application_fees/{fee_id}/refunds", p)


ROUTES: list[Route] = [
    ("POST", "/v1/transfers", "transfers.create", transfers_create),
    ("GET", "/v1/transfers", "transfers.list", transfers_list),
    ("GET", "/v1/transfers/{id}", "transfers.retrieve", transfers_retrieve),
    ("POST", "/v1/transfers/{id}", "transfers.update", transfers_update),
    ("POST", "/v1/transfers/{id}/reversals", "transfer_reversals.create", reversals_create),
    ("GET", "/v1/transfers/{id}/reversals", "transfer_reversals.list", reversals_list),
    ("GET", "/v1/transfers/{id}/reversals/{id}", "transfer_reversals.retrieve",
     reversals_retrieve),
    ("GET", "/v1/application_fees", "application_fees.list", application_fees_list),
    ("GET", "/v1/application_fees/{id}", "application_fees.retrieve", application_fees_retrieve),
    ("POST", "/v1/application_fees/{id}/refunds", "application_fee_refunds.create",
     fee_refunds_create),
    ("GET", "/v1/application_fees/{id}/refunds", "application_fee_refunds.list",
     fee_refunds_list),
    ("GET", "/v1/application_fees/{id}/refunds/{id}", "application_fee_refunds.retrieve",
     fee_refunds_retrieve),
]
