"""ReplicaSet planning (pure): create, delete, adopt, release, status."""

from __future__ import annotations

from typing import Any

import pytest

from engine.apiserver.controllers.actions import CreateObject, DeleteObject, SetStatus, UpdateObject
from engine.apiserver.controllers.replicaset_plan import plan_replicaset

RS_UID = "rs-uid"


def replica_set(desired: int, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": RS_UID, "generation": 2,
                     "resourceVersion": "7"},
        "spec": {"replicas": desired, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": status,
    }  # fmt: skip


def pod(
    name: str,
    *,
    owned: bool = True,
    labels: dict[str, str] | None = None,
    phase: str = "Running",
    ready: bool = True,
    created: str = "2024-01-01T00:00:00Z",
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name, "namespace": "ns", "uid": f"{name}-uid", "resourceVersion": "3",
        "labels": {"app": "web"} if labels is None else labels, "creationTimestamp": created,
    }  # fmt: skip
    if owned:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                    "uid": RS_UID, "controller": True,
                                    "blockOwnerDeletion": True}]  # fmt: skip
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:09Z"
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {"metadata": meta, "spec": {"nodeName": "n"},
            "status": {"phase": phase, "conditions": [condition]}}  # fmt: skip


def of_type(actions: list[Any], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def test_missing_replicas_are_created_from_the_template_with_a_controller_reference() -> None:
    actions = plan_replicaset(replica_set(3), [pod("web-a")], orphans=[])
    created = of_type(actions, CreateObject)
    assert len(created) == 2
    body = created[0].body
    assert body["metadata"]["generateName"] == "web-"
    assert body["metadata"]["labels"] == {"app": "web"}
    assert body["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": RS_UID,
         "controller": True, "blockOwnerDeletion": True}
    ]  # fmt: skip
    assert created[0].event is not None
    assert created[0].event.reason == "SuccessfulCreate"


def test_extra_replicas_go_not_ready_and_newest_first() -> None:
    pods = [
        pod("old-ready", created="2024-01-01T00:00:00Z"),
        pod("new-ready", created="2024-01-02T00:00:00Z"),
        pod("not-ready", ready=False, created="2023-01-01T00:00:00Z"),
    ]
    deleted = of_type(plan_replicaset(replica_set(1), pods, orphans=[]), DeleteObject)
    assert [d.key for d in deleted] == ["/pods/ns/not-ready", "/pods/ns/new-ready"]


def test_a_matching_orphan_is_adopted_instead_of_creating_a_pod() -> None:
    orphan = pod("stray", owned=False)
    actions = plan_replicaset(replica_set(1), [], orphans=[orphan])
    (adopt,) = of_type(actions, UpdateObject)
    assert adopt.key == "/pods/ns/stray"
    assert adopt.body["metadata"]["ownerReferences"][0]["uid"] == RS_UID
    assert of_type(actions, CreateObject) == []


def test_a_pod_that_no_longer_matches_is_released_and_replaced() -> None:
    relabelled = pod("web-a", labels={"app": "debug"})
    actions = plan_replicaset(replica_set(1), [relabelled], orphans=[])
    (release,) = of_type(actions, UpdateObject)
    assert "ownerReferences" not in release.body["metadata"]
    assert len(of_type(actions, CreateObject)) == 1


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        pytest.param([pod("a"), pod("b", ready=False)], (2, 1), id="one-not-ready"),
        pytest.param([pod("a"), pod("b", phase="Succeeded")], (1, 1), id="finished-not-counted"),
        pytest.param([pod("a"), pod("b", deleting=True)], (1, 1), id="deleting-not-counted"),
    ],
)
def test_status_counts_active_and_ready_pods(
    pods: list[dict[str, Any]], expected: tuple[int, int]
) -> None:
    (status,) = of_type(plan_replicaset(replica_set(2), pods, orphans=[]), SetStatus)
    assert (status.status["replicas"], status.status["readyReplicas"]) == expected
    assert status.status["observedGeneration"] == 2


def test_a_settled_replicaset_needs_nothing() -> None:
    settled = replica_set(1, replicas=1, fullyLabeledReplicas=1, readyReplicas=1,
                          availableReplicas=1, observedGeneration=2)  # fmt: skip
    assert plan_replicaset(settled, [pod("a")], orphans=[]) == []


def test_a_replicaset_being_deleted_creates_nothing_and_adopts_nothing() -> None:
    deleting = replica_set(3)
    deleting["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    actions = plan_replicaset(deleting, [], orphans=[pod("stray", owned=False)])
    assert of_type(actions, CreateObject) == []
    assert of_type(actions, UpdateObject) == []
