"""Lists: newest first, paged with limit / starting_after / ending_before / has_more, and the
``created`` filters (``created=T``, ``created[gt|gte|lt|lte]=T``)."""

from __future__ import annotations

import pytest
import requests
import stripe

from stripe_emulator.store import IdList

PI = {"amount": 5000, "currency": "usd"}
PAID = {**PI, "confirm": True, "payment_method": "pm_card_visa"}
COUNT = 250
T0 = 1_700_000_000


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _make(client, resource: str, count: int, clock: Clock | None = None,
          step: float = 0) -> list[str]:
    """``count`` objects of ``resource``, oldest first (the clock moves ``step`` s each)."""
    parent = None
    if resource == "refunds":
        parent = client.v1.payment_intents.create(params={**PAID, "amount": 100 * count})
    ids = []
    for _ in range(count):
        if resource == "payment_intents":
            ids.append(client.v1.payment_intents.create(params=PI).id)
        elif resource == "charges":
            ids.append(client.v1.payment_intents.create(params=PAID).latest_charge)
        else:
            ids.append(client.v1.refunds.create(params={"payment_intent": parent.id,
                                                        "amount": 100}).id)
        if clock is not None:
            clock.now += step
    return ids


def _list_gets(emulator, path: str) -> int:
    return sum(1 for r in emulator.requests() if r["method"] == "GET" and r["path"] == path)


@pytest.mark.parametrize("resource", ["payment_intents", "charges", "refunds"])
def test_auto_paging_walks_every_object_newest_first(client, emulator, resource):
    ids = _make(client, resource, COUNT)
    api = getattr(client.v1, resource)
    path = f"/v1/{resource}"

    emulator.clear_requests()
    walked = [o.id for o in api.list(params={"limit": 100}).auto_paging_iter()]
    assert walked == ids[::-1]
    assert _list_gets(emulator, path) == 3  # 100 + 100 + 50, then has_more is false

    emulator.clear_requests()
    assert [o.id for o in api.list().auto_paging_iter()] == ids[::-1]  # default limit 10
    assert _list_gets(emulator, path) == COUNT // 10

    # ending_before walks towards the newest; the SDK yields oldest first.
    oldest = ids[0]
    back = [o.id for o in api.list(params={"limit": 100, "ending_before": oldest})
            .auto_paging_iter()]
    assert back == ids[1:]

    first = api.list(params={"limit": 100})
    assert first.has_more and len(first.data) == 100
    second = api.list(params={"limit": 100, "starting_after": first.data[-1].id})
    assert second.has_more and second.data[0].id == ids[-101]
    third = api.list(params={"limit": 100, "starting_after": second.data[-1].id})
    assert not third.has_more and [o.id for o in third.data] == ids[49::-1]
    exact = api.list(params={"limit": 50, "starting_after": ids[50]})
    assert not exact.has_more and len(exact.data) == 50  # exactly the rest: no more


@pytest.mark.parametrize("resource", ["payment_intents", "charges", "refunds"])
def test_created_filters(client, emulator, resource):
    clock = Clock()
    emulator.set_clock(clock)
    ids = _make(client, resource, 6, clock, step=10)  # created T0, T0+10, ..., T0+50
    api = getattr(client.v1, resource)

    def listed(created, **params) -> list[str]:
        return [o.id for o in api.list(params={"created": created, **params}).data]

    assert listed({"gte": T0 + 20}) == ids[:1:-1]
    assert listed({"gt": T0 + 20}) == ids[:2:-1]
    assert listed({"lt": T0 + 20}) == ids[1::-1]
    assert listed({"lte": T0 + 20}) == ids[2::-1]
    assert listed({"gte": T0 + 10, "lt": T0 + 40}) == ids[3:0:-1]
    assert listed(T0 + 30) == [ids[3]]
    assert listed({"gt": T0 + 50}) == []
    assert listed({"lt": T0}) == []
    # With paging: the filter holds on every page.
    walked = [o.id for o in api.list(params={"created": {"gte": T0 + 10, "lte": T0 + 40},
                                             "limit": 1}).auto_paging_iter()]
    assert walked == ids[4:0:-1]
    page = api.list(params={"created": {"gte": T0 + 10}, "limit": 2, "starting_after": ids[4]})
    assert [o.id for o in page.data] == [ids[3], ids[2]] and page.has_more
    page = api.list(params={"created": {"lte": T0 + 30}, "limit": 2, "ending_before": ids[0]})
    assert [o.id for o in page.data] == [ids[2], ids[1]] and page.has_more


def test_created_filter_on_a_list_out_of_creation_order(client, emulator):
    """When the clock moved back (tests do that), each object is checked instead of bisecting."""
    clock = Clock()
    emulator.set_clock(clock)
    a = client.v1.payment_intents.create(params=PI).id
    clock.now = T0 + 20
    b = client.v1.payment_intents.create(params=PI).id
    clock.now = T0 + 10
    c = client.v1.payment_intents.create(params=PI).id
    assert emulator.state.lists["payment_intent"].created is None
    got = client.v1.payment_intents.list(params={"created": {"gte": T0 + 10}})
    assert [o.id for o in got.data] == [c, b]
    got = client.v1.payment_intents.list(params={"created": {"lt": T0 + 20}, "limit": 1})
    assert [o.id for o in got.data] == [c] and got.has_more
    assert [o.id for o in client.v1.payment_intents.list(params={"created": T0}).data] == [a]


def test_created_filter_combines_with_the_other_filters(client, emulator):
    clock = Clock()
    emulator.set_clock(clock)
    cus = client.v1.customers.create()
    mine = []
    for _ in range(3):
        mine.append(client.v1.payment_intents.create(params={**PI, "customer": cus.id}).id)
        client.v1.payment_intents.create(params=PI)
        clock.now += 10
    got = client.v1.payment_intents.list(params={"customer": cus.id,
                                                 "created": {"gte": T0 + 10}})
    assert [o.id for o in got.data] == mine[:0:-1]
    pi = client.v1.payment_intents.create(params={**PAID, "amount": 1000})
    clock.now += 10
    refunds = [client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 100}).id
               for _ in range(2)]
    got = client.v1.refunds.list(params={"payment_intent": pi.id, "created": {"gt": T0 + 30}})
    assert [o.id for o in got.data] == refunds[::-1]
    got = client.v1.charges.list(params={"payment_intent": pi.id, "created": {"lt": T0 + 30}})
    assert got.data == []


def test_invalid_created_filters_are_refused(client, emulator):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.list(params={"created": {"gte": "yesterday"}})
    assert info.value.param == "created[gte]" and info.value.code == "parameter_invalid_integer"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.list(params={"created": "soon"})
    assert info.value.param == "created"
    answer = requests.get(f"{emulator.base_url}/v1/charges?created[after]=1",
                          headers={"Authorization": "Bearer sk_test_x"}, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "parameter_unknown"
    assert answer.json()["error"]["param"] == "created[after]"


def test_idlist_window_bisects_while_created_never_decreases():
    ids = IdList()
    for n, created in enumerate([10, 10, 20, 30, 30, 40]):
        ids.append(f"x{n}", created)
    assert ids.window(None, None) == (0, 6)
    assert ids.window(10, 10) == (0, 2)
    assert ids.window(15, 30) == (2, 5)
    assert ids.window(41, None) == (6, 6)
    assert ids.window(None, 5) == (0, 0)
    assert ids.window(30, 20) == (3, 3)  # an empty range
    assert ids.page(10, None, None, window=(2, 5)) == (["x4", "x3", "x2"], False)
    assert ids.page(2, "x5", None, window=(2, 5)) == (["x4", "x3"], True)
    assert ids.page(2, None, "x0", window=(2, 5)) == (["x3", "x2"], True)
    ids.append("x6", 35)  # out of order: no more bisecting
    assert ids.window(10, 20) is None
    unknown = IdList()
    unknown.append("y")  # no created: cannot bisect
    assert unknown.window(None, None) is None
