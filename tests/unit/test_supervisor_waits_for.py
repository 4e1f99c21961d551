"""The waits-for graph finds each cycle as it forms, checked against a brute-force finder."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.supervisor.waits_for import (
    DeadlockPolicy,
    WaitsForGraph,
    deadlock_message,
    others_in_cycle,
    resolve_deadlock,
)

NODES = ("a", "b", "c", "d", "e")


def brute_force_cycle_through(edges: set[tuple[str, str]], waiter: str, target: str) -> bool:
    """Is there a simple cycle using edge waiter → target? Tries every ordering of nodes."""
    if waiter == target:
        return (waiter, target) in edges
    others = [n for n in NODES if n not in (waiter, target)]
    for size in range(len(others) + 1):
        for middle in itertools.permutations(others, size):
            path = (target, *middle, waiter)
            if all((x, y) in edges for x, y in itertools.pairwise(path)):
                return True
    return False


def is_cycle_in(cycle: tuple[str, ...], edges: set[tuple[str, str]]) -> bool:
    closed = (*cycle, cycle[0])
    return len(set(cycle)) == len(cycle) and all(
        (x, y) in edges for x, y in itertools.pairwise(closed)
    )


operations = st.lists(
    st.tuples(st.sampled_from(("add", "add", "add", "remove")), *[st.sampled_from(NODES)] * 2),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_add_edge_reports_a_cycle_exactly_when_the_new_edge_closes_one(
    ops: list[tuple[str, str, str]],
) -> None:
    graph = WaitsForGraph()
    edges: set[tuple[str, str]] = set()
    for op, waiter, target in ops:
        if op == "remove":
            graph.remove_edge(waiter, target)
            edges.discard((waiter, target))
            continue
        already = (waiter, target) in edges
        edges.add((waiter, target))
        cycle = graph.add_edge(waiter, target)
        if already:
            assert cycle is None
            continue
        expected = brute_force_cycle_through(edges, waiter, target)
        assert (cycle is not None) == expected
        if cycle is not None:
            assert cycle[0] == waiter
            assert cycle[1 % len(cycle)] == target
            assert is_cycle_in(cycle, edges)
        assert graph.edges() == edges


def test_a_three_way_cycle_is_reported_in_wait_order_when_it_closes() -> None:
    graph = WaitsForGraph()
    assert graph.add_edge("ns/a", "ns/b") is None
    assert graph.add_edge("ns/b", "ns/c") is None
    assert graph.add_edge("ns/c", "ns/a") == ("ns/c", "ns/a", "ns/b")


def test_the_shortest_cycle_through_the_new_edge_is_reported() -> None:
    graph = WaitsForGraph()
    for waiter, target in [("b", "c"), ("c", "d"), ("d", "a"), ("b", "a")]:
        graph.add_edge(waiter, target)
    assert graph.add_edge("a", "b") == ("a", "b")


def test_a_resource_waiting_for_itself_is_a_cycle_of_one() -> None:
    assert WaitsForGraph().add_edge("a", "a") == ("a",)


def test_removing_a_key_forgets_every_edge_into_and_out_of_it() -> None:
    graph = WaitsForGraph()
    graph.add_edge("a", "b")
    graph.add_edge("b", "c")
    graph.add_edge("c", "b")
    graph.remove_key("b")
    assert graph.edges() == frozenset()
    assert graph.edges_of("a") == frozenset()
    assert graph.waiters_of("c") == frozenset()
    assert graph.add_edge("c", "a") is None


def test_edges_of_and_waiters_of_answer_both_directions() -> None:
    graph = WaitsForGraph()
    graph.add_edge("a", "b")
    graph.add_edge("a", "c")
    graph.add_edge("d", "c")
    assert graph.edges_of("a") == {"b", "c"}
    assert graph.waiters_of("c") == {"a", "d"}


def test_others_in_cycle_start_with_the_one_the_member_waits_for() -> None:
    assert others_in_cycle(("a", "b", "c"), "b") == ("c", "a")
    assert deadlock_message(("a", "b", "c"), "b") == "b waits in a cycle: b → c → a → b"
    assert deadlock_message(("a",), "a") == "a waits for itself"


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_report_and_hold_fails_nobody() -> None:
    resolution = resolve_deadlock(("a", "b"), created={"a": T0, "b": T0})
    assert resolution.fail is None
    assert resolution.cycle == ("a", "b")


def test_fail_newest_picks_the_latest_created_member() -> None:
    created = {"a": T0, "b": T0 + timedelta(seconds=5), "c": T0 + timedelta(seconds=1)}
    resolution = resolve_deadlock(
        ("a", "b", "c"), created=created, policy=DeadlockPolicy.FAIL_NEWEST
    )
    assert resolution.fail == "b"
    assert "c, a" in resolution.reason


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        pytest.param({"a": T0, "b": T0}, "b", id="tie-greatest-key"),
        pytest.param({"a": T0 + timedelta(days=1)}, "b", id="unknown-age-counts-newest"),
    ],
)
def test_fail_newest_is_deterministic(created: dict[str, datetime], expected: str) -> None:
    resolution = resolve_deadlock(("a", "b"), created=created, policy=DeadlockPolicy.FAIL_NEWEST)
    assert resolution.fail == expected


def test_an_empty_cycle_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        resolve_deadlock((), created={})
