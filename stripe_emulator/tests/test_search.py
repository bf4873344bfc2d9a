"""Search, and its lag behind the live state (Stripe's search is eventually consistent)."""

from __future__ import annotations

import pytest
import requests
import stripe

from stripe_emulator.search import SearchIndex, Tracked

PI = {"amount": 5000, "currency": "usd"}
LAG_MS = 60_000
T0 = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(emulator) -> Clock:
    c = Clock()
    emulator.set_clock(c)
    return c


def search(client, query: str) -> list:
    return list(client.v1.payment_intents.search(params={"query": query}).data)


def by_order(client, order: str) -> list:
    return search(client, f"metadata['order']:'{order}'")


def test_no_lag_by_default_and_newest_first_within_one_second(client, emulator, clock):
    assert emulator.search_lag_ms == 0
    ids = [client.v1.payment_intents.create(params={**PI, "metadata": {"order": "1"}}).id
           for _ in range(3)]  # the same second on the frozen clock
    assert [pi.id for pi in by_order(client, "1")] == ids[::-1]


def test_a_new_object_is_searchable_only_once_the_lag_has_passed(client, emulator, clock):
    emulator.set_search_lag(LAG_MS)
    pi = client.v1.payment_intents.create(params={**PI, "metadata": {"order": "7"}})
    assert by_order(client, "7") == []
    clock.advance(59.9)
    assert by_order(client, "7") == []
    # Lists and retrieves are never lagged.
    assert [p.id for p in client.v1.payment_intents.list().data] == [pi.id]
    assert client.v1.payment_intents.retrieve(pi.id).id == pi.id
    clock.advance(0.1)
    found = client.v1.payment_intents.search(params={"query": "metadata['order']:'7'"})
    assert [p.id for p in found.data] == [pi.id]
    assert found.total_count == 1


def test_an_update_is_seen_by_search_only_after_the_lag(client, emulator, clock):
    emulator.set_search_lag(LAG_MS)
    pi = client.v1.payment_intents.create(params={**PI, "metadata": {"order": "8"}})
    clock.advance(120)
    (indexed,) = by_order(client, "8")
    assert indexed.status == "requires_payment_method"

    client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    clock.advance(30)
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    assert client.v1.payment_intents.list().data[0].status == "succeeded"
    # Search still has the state of a minute ago: the old status matches, and is returned.
    assert search(client, "status:'succeeded'") == []
    (stale,) = by_order(client, "8")
    assert stale.status == "requires_payment_method" and stale.latest_charge is None
    assert [p.id for p in search(client, "status:'requires_payment_method'")] == [pi.id]

    clock.advance(30)
    (fresh,) = by_order(client, "8")
    assert fresh.status == "succeeded" and fresh.latest_charge
    assert search(client, "status:'requires_payment_method'") == []
    assert emulator.state.search.pending_histories() == 0  # nothing kept once caught up


def test_a_metadata_change_lags_too(client, emulator, clock):
    emulator.set_search_lag(LAG_MS)
    pi = client.v1.payment_intents.create(params={**PI, "metadata": {"order": "old"}})
    clock.advance(61)
    client.v1.payment_intents.update(pi.id, params={"metadata": {"order": "new"}})
    clock.advance(1)
    assert by_order(client, "new") == []
    (old,) = by_order(client, "old")
    assert old.metadata["order"] == "old"
    clock.advance(60)
    assert by_order(client, "old") == []
    assert [p.metadata["order"] for p in by_order(client, "new")] == ["new"]


def test_a_decline_and_a_3ds_completion_are_indexed_when_they_happen(client, emulator, clock):
    emulator.set_search_lag(LAG_MS)
    declined = client.v1.payment_intents.create(params={**PI, "metadata": {"order": "d"}})
    secure = client.v1.payment_intents.create(params={
        **PI, "confirm": True, "payment_method": "pm_card_authenticationRequired",
        "return_url": "https://example.com/back", "metadata": {"order": "3ds"}})
    assert secure.status == "requires_action"
    clock.advance(100)
    with pytest.raises(stripe.CardError):  # the intent changes, then the error is raised
        client.v1.payment_intents.confirm(declined.id,
                                          params={"payment_method": "pm_card_visa_chargeDeclined"})
    clock.advance(5)
    emulator.complete_3ds(secure.id)  # no /v1 request: indexed at this moment all the same
    clock.advance(54)
    assert by_order(client, "d")[0].last_payment_error is None
    assert by_order(client, "3ds")[0].status == "requires_action"
    clock.advance(1)  # 60 s after the decline
    assert by_order(client, "d")[0].last_payment_error.code == "card_declined"
    assert by_order(client, "3ds")[0].status == "requires_action"
    clock.advance(5)  # 60 s after the authentication
    assert by_order(client, "3ds")[0].status == "succeeded"


def test_objects_that_existed_before_the_lag_was_set(client, emulator, clock):
    pi = client.v1.payment_intents.create(params={**PI, "metadata": {"order": "pre"}})
    clock.advance(10)
    emulator.set_search_lag(LAG_MS)
    assert by_order(client, "pre") == []  # visible once the lag has passed since `created`
    clock.advance(50)
    client.v1.payment_intents.cancel(pi.id)  # the index keeps the state before this change
    (before,) = by_order(client, "pre")
    assert before.status == "requires_payment_method"
    clock.advance(60)
    assert by_order(client, "pre")[0].status == "canceled"


def test_turning_the_lag_off_shows_everything_at_once(client, emulator, clock):
    emulator.set_search_lag(LAG_MS)
    pi = client.v1.payment_intents.create(params={**PI, "metadata": {"order": "9"}})
    assert by_order(client, "9") == []
    emulator.set_search_lag(0)
    assert [p.id for p in by_order(client, "9")] == [pi.id]
    assert emulator.state.search.pending_histories() == 0


def test_reset_keeps_the_lag(client, emulator, clock):
    emulator.set_search_lag(LAG_MS)
    emulator.reset()
    assert emulator.search_lag_ms == LAG_MS
    client.v1.payment_intents.create(params={**PI, "metadata": {"order": "r"}})
    assert by_order(client, "r") == []


def test_a_negative_lag_is_refused(emulator):
    with pytest.raises(ValueError):
        emulator.set_search_lag(-1)
    assert emulator.search_lag_ms == 0


def test_search_lag_over_http(client, emulator, clock):
    base = emulator.base_url
    answer = requests.post(f"{base}/_emulator/config", json={"search_lag_ms": LAG_MS}, timeout=5)
    assert answer.json() == {"search_lag_ms": float(LAG_MS)}
    assert emulator.search_lag_ms == LAG_MS
    assert requests.get(f"{base}/_emulator/config", timeout=5).json() == {
        "latency_ms": 0, "search_lag_ms": float(LAG_MS)}
    client.v1.payment_intents.create(params={**PI, "metadata": {"order": "h"}})
    assert by_order(client, "h") == []
    form = requests.post(f"{base}/_emulator/config", data={"search_lag_ms": "0"}, timeout=5)
    assert form.json() == {"search_lag_ms": 0.0}
    assert len(by_order(client, "h")) == 1
    bad = requests.post(f"{base}/_emulator/config", json={"search_lag_ms": -5}, timeout=5)
    assert bad.status_code == 400
    assert requests.post(f"{base}/_emulator/config", json={"search_lag_ms": "soon"},
                         timeout=5).status_code == 400
    assert emulator.search_lag_ms == 0


def test_the_index_on_its_own():
    now = [100.0]
    index = SearchIndex(lambda: now[0])
    index.set_lag(10)
    obj = Tracked({"id": "pi_1", "created": 100, "status": "a"})
    index.watch(obj)
    index.commit()
    assert index.view(obj) is None
    now[0] = 110.0
    assert index.view(obj) is obj  # caught up: the live object, no copy kept
    obj["status"] = "b"
    index.commit()
    seen = index.view(obj)
    assert seen == {"id": "pi_1", "created": 100, "status": "a"} and seen is not obj
    now[0] = 120.0
    assert index.view(obj)["status"] == "b"
    plain = {"id": "pi_2", "created": 115, "status": "a"}  # untracked: by `created` only
    index.watch(plain)
    assert index.view(plain) is None
    now[0] = 125.0
    assert index.view(plain) is plain
