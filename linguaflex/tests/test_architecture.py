"""How the apps depend on each other (STYLE.md, "The shape of the whole" and §5), read from the code
with ``ast``: no import cycle between apps, bookings never imports stripe_payments, only the gateway
imports ``stripe``, and bookings knows no payment status.

Module-level and function-level imports count alike; tests, migrations and the shared test fixtures
(``linguaflex/testing``) are not app code and are left out.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from bookings.models import BookingStatus
from stripe_payments.models import PaymentStatus

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "gigs", "bookings", "stripe_payments", "linguaflex")
NOT_APP_CODE = {"tests", "migrations", "testing"}
GATEWAY = "stripe_payments/gateway.py"


def app_files(app: str) -> list[Path]:
    return sorted(p for p in (ROOT / app).rglob("*.py") if not NOT_APP_CODE & set(p.relative_to(ROOT / app).parts))


def imported_modules(source: str, path: str) -> list[tuple[str, int]]:
    """The absolute modules ``source`` imports, with their lines: ``import x.y``, ``from x.y import z``
    (a relative import stays inside its own package and is left out) and
    ``importlib.import_module("x.y")`` / ``__import__("x.y")``, wherever they are in the file."""
    found = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__"):
                found.append((node.args[0].value, node.lineno))
    return found


def import_graph(sources: dict[str, str]) -> dict[tuple[str, str], list[str]]:
    """{(app, imported app): ["path:line", ...]} for sources keyed by their path from the project root."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path, source in sources.items():
        app = path.split("/", 1)[0]
        for module, line in imported_modules(source, path):
            target = module.split(".", 1)[0]
            if target in APPS and target != app:
                edges[(app, target)].append(f"{path}:{line}")
    return dict(edges)


def cycles(edges) -> list[list[str]]:
    """The strongly connected groups of two or more apps (each holds a cycle), by Tarjan's algorithm."""
    graph: dict[str, set[str]] = defaultdict(set)
    for src, dst in edges:
        graph[src].add(dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def _shortest_cycle(edges, group: list[str]) -> list[str]:
    """One shortest cycle among ``group``'s apps, as the path that closes it (a -> b -> a)."""
    best: list[str] = []
    for start in group:
        paths, seen = [[start]], {start}
        while paths and not (best and len(paths[0]) >= len(best)):
            path = paths.pop(0)
            for a, b in sorted(edges):
                if a == path[-1] and b in group:
                    if b == start:
                        if not best or len(path) + 1 < len(best):
                            best = path + [b]
                    elif b not in seen:
                        seen.add(b)
                        paths.append(path + [b])
    return best


def _describe(edges, groups) -> str:
    lines = []
    for group in groups:
        lines.append(" <-> ".join(group) + ", e.g. " + " -> ".join(_shortest_cycle(edges, group)) + ":")
        lines += [f"  {a} -> {b}: {', '.join(where)}" for (a, b), where in sorted(edges.items())
                  if a in group and b in group]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return {p.relative_to(ROOT).as_posix(): p.read_text() for app in APPS for p in app_files(app)}


@pytest.fixture(scope="module")
def graph(sources):
    return import_graph(sources)


# --- the checker itself -----------------------------------------------------------------------------------
def test_the_graph_sees_every_app_and_the_imports_it_is_made_of(sources, graph):
    assert {path.split("/", 1)[0] for path in sources} == set(APPS)
    assert not [p for p in sources if "/tests/" in p or "/migrations/" in p or p.startswith("linguaflex/testing/")]
    assert ("stripe_payments", "bookings") in graph  # the lifecycle books a succeeded payment
    assert ("gigs", "accounts") in graph
    assert ("stripe_payments", "linguaflex") in graph


def test_function_level_and_dynamic_imports_count_and_relative_ones_stay_inside():
    source = ("from . import services\nfrom .models import Booking\n"
              "def late():\n    from stripe_payments.services import refunds\n    import gigs.models\n"
              "def dynamic():\n    return importlib.import_module('accounts.models')\n")

    assert import_graph({"bookings/views.py": source}) == {
        ("bookings", "stripe_payments"): ["bookings/views.py:4"], ("bookings", "gigs"): ["bookings/views.py:5"],
        ("bookings", "accounts"): ["bookings/views.py:7"]}


@pytest.mark.parametrize(("edges", "expected"), [
    ({("a", "b"), ("b", "c")}, []),
    ({("a", "b"), ("b", "a")}, [["a", "b"]]),
    ({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}, [["a", "b", "c"]]),
    ({("a", "b"), ("b", "a"), ("c", "d"), ("d", "c")}, [["a", "b"], ["c", "d"]]),
])
def test_cycles_of_any_length_are_found(edges, expected):
    assert cycles(edges) == expected


def test_a_cycle_is_shown_by_its_shortest_path():
    edges = {("a", "b"), ("b", "c"), ("c", "a"), ("b", "a")}

    assert _shortest_cycle(edges, ["a", "b", "c"]) == ["a", "b", "a"]


# --- the rules --------------------------------------------------------------------------------------------
def test_no_app_imports_an_app_that_imports_it_back(graph):
    found = cycles(graph)

    assert found == [], "import cycles between apps:\n" + _describe(graph, found)


def test_bookings_never_imports_stripe_payments(graph):
    assert ("bookings", "stripe_payments") not in graph, graph.get(("bookings", "stripe_payments"))


def test_only_the_gateway_imports_stripe(sources):
    importers = sorted({f"{path}:{line}" for path, source in sources.items()
                        for module, line in imported_modules(source, path)
                        if module == "stripe" or module.startswith("stripe.")})

    assert importers and all(w.startswith(f"{GATEWAY}:") for w in importers), importers


# --- bookings knows no payment status ---------------------------------------------------------------------
PAYMENT_STATUS_VALUES = {s.value for s in PaymentStatus}


def hard_coded_payment_statuses(source: str, path: str) -> list[str]:
    """Every string literal in ``source`` (docstrings aside) that is a payment status value, and every
    ``payment__status`` lookup. A literal that is also a booking status ("refunded", "disputed") is
    allowed only as the value of a ``BookingStatus`` member, where the booking states are defined."""
    tree = ast.parse(source, filename=path)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    booking_members = {id(sub) for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                       and node.name == "BookingStatus" for stmt in node.body if isinstance(stmt, ast.Assign)
                       for sub in ast.walk(stmt.value)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if node.value in PAYMENT_STATUS_VALUES and id(node) not in booking_members:
                found.append(f"{path}:{node.lineno}: {node.value!r}")
        elif isinstance(node, ast.keyword) and node.arg and node.arg.startswith("payment__status"):
            found.append(f"{path}:{node.value.lineno}: {node.arg}=")
    return found


def test_bookings_hard_codes_no_payment_status(sources):
    found = [hit for path, source in sources.items() if path.startswith("bookings/")
             for hit in hard_coded_payment_statuses(source, path)]

    assert found == [], "bookings must ask the payment (has_succeeded), not spell its status:\n" + "\n".join(found)


@pytest.mark.parametrize(("snippet", "caught"), [
    ('if payment.status != "succeeded":\n    raise X', True),
    ("ok = payment.status in ('succeeded', 'partially_refunded')", True),
    ("qs = Booking.objects.filter(payment__status='refunded')", True),
    ('booking.status = "refunded"', True),  # a booking status spelled out: BookingStatus.REFUNDED is the name
    ("if not payment.has_succeeded:\n    raise X", False),
    ('message = f"payment {payment.pk} is {payment.status}"', False),
    ('class BookingStatus:\n    REFUNDED = "refunded", "Refunded"', False),
    ('def f():\n    """A succeeded payment."""', False),
])
def test_the_payment_status_check_tells_a_hard_coded_status(snippet, caught):
    assert bool(hard_coded_payment_statuses(snippet + "\n", "bookings/example.py")) is caught


def test_the_booking_states_that_share_a_payment_states_name_are_the_ones_allowed():
    assert PAYMENT_STATUS_VALUES & {s.value for s in BookingStatus} == {"refunded", "disputed"}
