"""The collector's owner index: planning over what a change affected equals planning over
everything, for random owner graphs and random changes, and a collector driven only by
the affected keys settles exactly where the full collector does.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.apiserver.gc.owner_index import OwnerIndex, matters
from engine.apiserver.gc.planning import FOREGROUND, ORPHAN, Node, OwnerLink, plan
from tests.unit.test_apiserver_gc import (
    HOLD,
    POLICIES,
    ModelServer,
    Scenario,
    link,
    node,
    run,
    scenarios,
)


def index_of(objects: dict[str, Node]) -> OwnerIndex:
    index = OwnerIndex()
    for key, obj in objects.items():
        index.add_uid(key, obj.uid)
    for key, obj in objects.items():
        index.update(key, obj, deleted=False)
    return index


def tracked_change(server: ModelServer, index: OwnerIndex, change: Callable[[], None]) -> set[str]:
    """Run `change` on the server, tell the index what it changed; the affected keys."""
    before = dict(server.objects)
    change()
    after = server.objects
    affected: set[str] = set()
    for key in sorted(before.keys() - after.keys()):
        affected |= index.update(key, before[key], deleted=True)
    for key in sorted(after.keys() - before.keys()):
        index.add_uid(key, after[key].uid)
    for key in sorted(after):
        if before.get(key) != after[key]:
            affected |= index.update(key, after[key], deleted=False)
    return affected


def incremental_settle(server: ModelServer, index: OwnerIndex, dirty: set[str]) -> None:
    """The collector's loop on the model: plan over dirty keys only, checked each round."""
    for _ in range(len(server.objects) * 4 + 60):
        while dirty:
            actions = index.plan_for(dirty, server.objects.get)
            assert actions == plan(server.objects.values()), "the affected part missed work"
            dirty = set()
            for action in actions:
                dirty |= tracked_change(server, index, lambda a=action: server.apply(a))
        assert plan(server.objects.values()) == []
        held = [k for k, o in server.objects.items() if o.deleting and HOLD in o.finalizers]
        if not held:
            return
        for key in held:
            dirty |= tracked_change(server, index, lambda k=key: server.remove_finalizer(k, HOLD))
    raise AssertionError("no fixed point")


def test_a_new_dependent_of_a_vanished_owner_is_affected() -> None:
    index = index_of({"o": node("o")})
    assert index.update("d", node("d", link("gone")), deleted=False) == {"d"}
    assert index.plan_for({"d"}, {}.get) == plan([node("o"), node("d", link("gone"))])


def test_removing_a_blocking_dependent_affects_its_foreground_owner() -> None:
    owner = node("o", finalizers=(FOREGROUND,), deleting=True)
    blocker = node("d", link("o", block=True), finalizers=(HOLD,), deleting=True)
    index = index_of({"o": owner, "d": blocker})
    assert index.update("d", blocker, deleted=True) == {"o"}
    assert len(index.plan_for({"o"}, {"o": owner}.get)) == 1


def test_an_owner_starting_to_orphan_affects_each_dependent() -> None:
    objects = {"o": node("o"), "d1": node("d1", link("o")), "d2": node("d2", link("o"))}
    index = index_of(objects)
    orphaning = node("o", finalizers=(ORPHAN,), deleting=True)
    assert index.update("o", orphaning, deleted=False) == {"o", "d1", "d2"}


def test_a_status_change_of_a_plain_owner_affects_nothing() -> None:
    index = index_of({"o": node("o"), "d": node("d", link("o"))})
    assert index.update("o", node("o"), deleted=False) == set()
    assert not matters(node("o", finalizers=(HOLD,), deleting=True))


def test_only_a_write_update_would_ignore_is_answered_without_building_its_node() -> None:
    index = index_of({"o": node("o"), "d": node("d", link("o"))})
    plain = {"name": "p", "uid": "uid-p", "finalizers": ["x"]}
    assert index.untouched_by("p", plain)
    assert index.update("p", node("p", finalizers=("x",)), deleted=False) == set()
    assert index.tracked_keys() == ["d"]
    # a tracked dependent losing its owners, a new owner link, a deletion starting
    unlinked = {"name": "d", "uid": "uid-d"}
    assert not index.untouched_by("d", unlinked)
    assert index.update("d", node("d"), deleted=False) == set()
    assert index.tracked_keys() == []
    owned = {"name": "p", "uid": "uid-p", "ownerReferences": [{"uid": "uid-o"}]}
    assert not index.untouched_by("p", owned)
    assert not index.untouched_by("o", {"name": "o", "deletionTimestamp": "2024-01-01T00:00:00Z"})


def _one_change(data: st.DataObject, server: ModelServer) -> Callable[[], None]:
    keys = sorted(server.objects)
    uids = [server.objects[k].uid for k in keys] + ["uid-gone"]
    kinds = ["add"] + (["delete", "remove", "link"] if keys else [])
    if any(HOLD in o.finalizers for o in server.objects.values()):
        kinds.append("release")
    if any(o.owners for o in server.objects.values()):
        kinds.append("unlink")
    kind = data.draw(st.sampled_from(kinds))
    if kind == "add":
        owners = data.draw(st.lists(st.sampled_from(uids), unique=True, max_size=3))
        links = tuple(OwnerLink(uid, data.draw(st.booleans())) for uid in owners)
        new = Node("new", "uid-new", links, (HOLD,) if data.draw(st.booleans()) else (), False)
        return lambda: server.objects.__setitem__("new", new)
    if kind == "release":
        held = sorted(k for k, o in server.objects.items() if HOLD in o.finalizers)
        key = data.draw(st.sampled_from(held))
        return lambda: server.remove_finalizer(key, HOLD)
    if kind == "unlink":
        key = data.draw(st.sampled_from(sorted(k for k in keys if server.objects[k].owners)))
        obj = server.objects[key]
        dropped = data.draw(st.sampled_from(obj.owners))
        kept = tuple(o for o in obj.owners if o != dropped)
        return lambda: server.objects.__setitem__(
            key, Node(key, obj.uid, kept, obj.finalizers, obj.deleting)
        )
    key = data.draw(st.sampled_from(keys))
    if kind == "delete":
        policy = data.draw(st.sampled_from(POLICIES))
        return lambda: server.delete(key, policy)
    if kind == "remove":
        return lambda: server.objects.__delitem__(key)
    obj = server.objects[key]
    target = data.draw(st.sampled_from([u for u in uids if u != obj.uid]))
    owners = (
        *(o for o in obj.owners if o.uid != target),
        OwnerLink(target, data.draw(st.booleans())),
    )
    return lambda: server.objects.__setitem__(
        key, Node(key, obj.uid, owners, obj.finalizers, obj.deleting)
    )


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_planning_what_one_change_affected_equals_planning_everything(
    data: st.DataObject,
) -> None:
    scenario: Scenario = data.draw(scenarios(acyclic=data.draw(st.booleans())))
    server = ModelServer({n.key: n for n in scenario.nodes})
    for key, policy in scenario.deletions[: data.draw(st.integers(0, len(scenario.deletions)))]:
        server.delete(key, policy)
    if data.draw(st.booleans()):
        server.settle()
    else:
        server.collect()  # leave objects deleting behind their controllers' finalizers
    assert plan(server.objects.values()) == []
    index = index_of(server.objects)
    affected = tracked_change(server, index, _one_change(data, server))
    assert index.plan_for(affected, server.objects.get) == plan(server.objects.values())


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_collector_driven_by_affected_keys_settles_like_the_full_one(
    data: st.DataObject,
) -> None:
    scenario: Scenario = data.draw(scenarios(acyclic=data.draw(st.booleans())))
    server = ModelServer({n.key: n for n in scenario.nodes})
    index = index_of(server.objects)
    dirty: set[str] = set()
    for key, policy in scenario.deletions:
        dirty |= tracked_change(server, index, lambda k=key, p=policy: server.delete(k, p))
    incremental_settle(server, index, dirty)
    assert server.objects == run(scenario).objects
