"""What ``/v1/*/search`` sees: Stripe's search index, optionally lagging behind the live state.

Stripe's search is eventually consistent ("under normal conditions, data is searchable in under a
minute"), for new objects and for changes alike. With a lag of ``L`` seconds (``set_lag``;
0 by default, the emulator's historical behaviour) the index at time ``T`` holds every searchable
object **as it was at ``T - L``**:

- an object created after ``T - L`` is absent from the results;
- an object changed after ``T - L`` is matched, and returned, in its state before the change (a
  search by ``status:'succeeded'`` misses an intent that succeeded less than ``L`` ago, and a
  search by metadata returns it with its old status);
- lists and retrieves always read the live state; only search goes through this index.

Time is the emulator's clock (``State.clock``, replaced by ``set_clock``), so tests move it
instead of sleeping. A change is indexed at the end of the operation that made it
(``commit()``), stamped with the clock at that moment.

How changes are noticed: searchable objects are :class:`Tracked` dicts, which tell the index
before every top-level write (``obj[key] = value``), so it can keep the state before the change. Writes inside nested values
(``obj["metadata"]["k"] = v``) are not noticed; the API always assigns whole top-level values.
Objects that are plain dicts (state bulk-loaded by a benchmark) are searched in their current
state, visible once ``L`` has passed since their ``created``; so are tracked objects whose last
change is older than ``L`` (their current state is then the indexed one), and objects created
while the lag was 0. Histories are kept only while the lag is above 0, and only for objects
changed within the last ``L`` seconds.

This module imports nothing else from the emulator.
"""

from __future__ import annotations

from typing import Callable, Optional

# The object types with a /v1/<type>s/search route (add one here when adding its route, and make
# its builder in objects.py return a Tracked dict).
SEARCHABLE = frozenset({"payment_intent"})

_BASE = float("-inf")  # the timestamp of a version already indexed "since ever"


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


class Tracked(dict):
    """A stored object that tells the search index before each top-level write."""

    __slots__ = ("_index",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._index: Optional[SearchIndex] = None

    def _touch(self) -> None:
        index = self._index
        if index is not None and index.lag > 0:
            index.note(self)

    def __setitem__(self, key, value) -> None:
        self._touch()
        dict.__setitem__(self, key, value)

    def __delitem__(self, key) -> None:
        self._touch()
        dict.__delitem__(self, key)

    def update(self, *args, **kwargs) -> None:
        self._touch()
        dict.update(self, *args, **kwargs)

    def setdefault(self, key, default=None):
        self._touch()
        return dict.setdefault(self, key, default)

    def pop(self, *args):
        self._touch()
        return dict.pop(self, *args)


class SearchIndex:
    """The lagging view of the searchable objects. Every method runs under ``State.lock``."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.lag = 0.0  # seconds
        self._dirty: dict[str, dict] = {}  # changed since the last commit
        # id -> [(indexed at, document)], oldest first; only for objects changed within the lag.
        self._versions: dict[str, list[tuple[float, dict]]] = {}

    # --- configuration ---------------------------------------------------------------------

    def set_lag(self, seconds: float) -> None:
        seconds = float(seconds)
        if not seconds >= 0:  # also refuses NaN
            raise ValueError("the search lag must be 0 or more")
        self.commit()
        if seconds == 0:
            self._versions.clear()
        self.lag = seconds

    def clear(self) -> None:
        """Forget every pending change and history (the lag stays)."""
        self._dirty.clear()
        self._versions.clear()

    # --- writes ----------------------------------------------------------------------------

    def watch(self, obj: dict, *, new: bool = True) -> None:
        """Track a stored object. ``new``: just created (indexed only at the next commit);
        otherwise (loaded from a state file) it counts as indexed since its ``created``."""
        if not isinstance(obj, Tracked):
            return
        obj._index = self
        if new and self.lag > 0:
            self._dirty[obj["id"]] = obj

    def note(self, obj: dict) -> None:
        """``obj`` is about to change (called by Tracked while the lag is above 0)."""
        oid = obj["id"]
        if oid in self._dirty:
            return
        if oid not in self._versions:
            # Unchanged for longer than the lag, or since before the lag was set: the index holds
            # it as it is now, since its creation.
            self._versions[oid] = [(float(obj.get("created") or 0), _copy(obj))]
        self._dirty[oid] = obj

    def commit(self) -> None:
        """Index the changes made since the last commit, stamped with the clock now."""
        dirty = self._dirty
        if not dirty:
            return
        if self.lag <= 0:
            dirty.clear()
            return
        now = self.clock()
        cutoff = now - self.lag
        for oid, obj in dirty.items():
            history = self._versions.setdefault(oid, [])
            stamp = max(now, history[-1][0]) if history else now  # a clock moved back: keep order
            history.append((stamp, _copy(obj)))
            self._prune(oid, history, cutoff)
        dirty.clear()

    # --- reads -----------------------------------------------------------------------------

    def view(self, obj: dict) -> Optional[dict]:
        """``obj`` as the index shows it now, or None while it is not indexed yet."""
        if self.lag <= 0:
            return obj
        cutoff = self.clock() - self.lag
        history = self._versions.get(obj["id"])
        if history is None:
            return obj if obj.get("created", 0) <= cutoff else None
        return self._prune(obj["id"], history, cutoff, live=obj)

    def _prune(self, oid: str, history: list, cutoff: float,
               live: Optional[dict] = None) -> Optional[dict]:
        """The newest version indexed by ``cutoff`` (None if none); drops the older ones, and the
        whole history once the live object is the indexed one."""
        seen = -1
        for i, (stamp, _) in enumerate(history):
            if stamp > cutoff:
                break
            seen = i
        if seen < 0:
            return None
        doc = history[seen][1]
        if seen == len(history) - 1 and live is not None and oid not in self._dirty:
            del self._versions[oid]  # no change since: the live object is what the index holds
            return live
        if seen > 0 or history[0][0] != _BASE:
            history[:seen + 1] = [(_BASE, doc)]
        return doc

    def pending_histories(self) -> int:
        """How many objects have changes the index does not show yet (for tests)."""
        return len(self._versions)
