"""The controllers' workload index: controller and orphan bookkeeping through changes."""

from __future__ import annotations

from typing import Any

from engine.apiserver.controllers.workload_index import WorkloadIndex


def pod(name: str, *, controller: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": f"{name}-uid"}
    if controller is not None:
        meta["ownerReferences"] = [{"uid": controller, "controller": True}]
    return {"metadata": meta}


def test_a_pod_moves_between_controllers_and_orphans_as_it_changes() -> None:
    index = WorkloadIndex()
    index.update("apps/replicasets/ns/rs", {"metadata": {"uid": "rs-uid"}}, deleted=False)
    assert index.update("/pods/ns/p", pod("p", controller=None), deleted=False) is None
    assert index.orphan_pods("ns") == ["/pods/ns/p"]
    assert index.update("/pods/ns/p", pod("p", controller="rs-uid"), deleted=False) is None
    assert index.controlled_by("rs-uid", plural="pods") == ["/pods/ns/p"]
    assert index.orphan_pods("ns") == []
    previous = index.update("/pods/ns/p", pod("p", controller=None), deleted=False)
    assert previous == "rs-uid"
    assert index.controlled_by("rs-uid", plural="pods") == []
    assert index.key_of("rs-uid") == "apps/replicasets/ns/rs"


def test_a_deleted_object_leaves_every_lookup() -> None:
    index = WorkloadIndex()
    index.update("/pods/ns/p", pod("p", controller="x"), deleted=False)
    assert index.in_namespace("ns") == ["/pods/ns/p"]
    assert index.update("/pods/ns/p", pod("p", controller="x"), deleted=True) == "x"
    assert index.in_namespace("ns") == []
    assert index.of_kind("pods", "ns") == []
    assert index.key_of("p-uid") is None
    assert index.controlled_by("x", plural="pods") == []


def test_rebuild_indexes_what_is_stored() -> None:
    index = WorkloadIndex()
    index.update("/pods/ns/old", pod("old", controller=None), deleted=False)
    index.rebuild([("/pods/ns/new", pod("new", controller="c"))])
    assert index.orphan_pods("ns") == []
    assert index.controlled_by("c", plural="pods") == ["/pods/ns/new"]
