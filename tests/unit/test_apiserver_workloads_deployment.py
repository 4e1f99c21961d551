"""Deployment planning (pure): the ReplicaSet per template, rolling steps, status."""

from __future__ import annotations

from typing import Any

import pytest

from engine.apiserver.controllers.actions import CreateObject, DeleteObject, SetStatus, UpdateObject
from engine.apiserver.controllers.deployment_plan import REVISION, new_replicaset, plan_deployment
from engine.apiserver.controllers.pod_template import TEMPLATE_HASH_LABEL, template_hash
from engine.apiserver.controllers.rollout_bounds import resolve_bound

NOW = "2024-01-01T00:00:00Z"


def deployment(replicas: int = 4, image: str = "v2", **strategy: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "ns", "uid": "d-uid", "generation": 1,
                     "resourceVersion": "5", "annotations": {REVISION: "1"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "api"}},
                 "strategy": strategy or {"type": "RollingUpdate",
                                          "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
                 "template": {"metadata": {"labels": {"app": "api"}},
                              "spec": {"containers": [{"name": "c", "image": image}]}}},
    }  # fmt: skip


def replica_set(
    owner: dict[str, Any], *, replicas: int, available: int, revision: int
) -> dict[str, Any]:
    rs = new_replicaset(owner, replicas=replicas, revision=revision)
    rs["metadata"].update(namespace="ns", uid=f"rs-{revision}", resourceVersion="9")
    rs["status"] = {"replicas": replicas, "readyReplicas": available,
                    "availableReplicas": available}  # fmt: skip
    return rs


def scales(actions: list[Any]) -> dict[str, int]:
    return {
        a.key.rsplit("/", 1)[1]: a.body["spec"]["replicas"]
        for a in actions
        if isinstance(a, UpdateObject) and a.key.startswith("apps/replicasets/")
    }


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        pytest.param("25%", 10, True, 3, id="percent-up"),
        pytest.param("25%", 10, False, 2, id="percent-down"),
        pytest.param(2, 10, True, 2, id="count"),
        pytest.param("bogus", 10, True, 0, id="unparsable"),
    ],
)
def test_bounds_resolve_like_intorstr(
    value: Any, total: int, round_up: bool, expected: int
) -> None:
    assert resolve_bound(value, total, round_up=round_up) == expected


def test_a_new_deployment_gets_a_replicaset_named_by_its_template_hash() -> None:
    (create,) = plan_deployment(deployment(), [], now=NOW)
    assert isinstance(create, CreateObject)
    body = create.body
    digest = template_hash(deployment()["spec"]["template"])
    assert body["metadata"]["name"] == f"api-{digest}"
    assert body["metadata"]["labels"][TEMPLATE_HASH_LABEL] == digest
    assert body["spec"]["selector"]["matchLabels"] == {"app": "api", TEMPLATE_HASH_LABEL: digest}
    assert body["spec"]["replicas"] == 4
    assert body["metadata"]["ownerReferences"][0]["uid"] == "d-uid"
    assert create.event is not None
    assert create.event.reason == "ScalingReplicaSet"


def test_a_template_change_creates_the_next_revision_within_max_surge() -> None:
    old = replica_set(deployment(image="v1"), replicas=4, available=4, revision=1)
    (create,) = plan_deployment(deployment(image="v2"), [old], now=NOW)
    assert isinstance(create, CreateObject)
    assert create.body["metadata"]["annotations"][REVISION] == "2"
    assert create.body["spec"]["replicas"] == 1  # 4 + maxSurge 1 - 4 old


def test_rolling_scales_old_down_within_max_unavailable() -> None:
    current = deployment(image="v2")
    old = replica_set(deployment(image="v1"), replicas=4, available=4, revision=1)
    new = replica_set(current, replicas=1, available=0, revision=2)
    old_name = old["metadata"]["name"]
    # 5 pods, min available 3, the new one is unavailable: 1 old replica may go
    assert scales(plan_deployment(current, [old, new], now=NOW)) == {old_name: 3}


def test_rolling_scales_the_new_set_up_once_there_is_room() -> None:
    current = deployment(image="v2")
    old = replica_set(deployment(image="v1"), replicas=3, available=3, revision=1)
    new = replica_set(current, replicas=1, available=1, revision=2)
    assert scales(plan_deployment(current, [old, new], now=NOW)) == {new["metadata"]["name"]: 2}


def test_recreate_empties_old_sets_before_the_new_one_grows() -> None:
    current = deployment(image="v2", type="Recreate")
    old = replica_set(deployment(image="v1"), replicas=4, available=4, revision=1)
    new = replica_set(current, replicas=0, available=0, revision=2)
    assert scales(plan_deployment(current, [old, new], now=NOW)) == {old["metadata"]["name"]: 0}


def test_a_complete_rollout_reports_available_and_new_replicaset_available() -> None:
    current = deployment(image="v2")
    new = replica_set(current, replicas=4, available=4, revision=1)
    (status,) = [a for a in plan_deployment(current, [new], now=NOW) if isinstance(a, SetStatus)]
    conditions = {c["type"]: c for c in status.status["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert status.status["updatedReplicas"] == 4
    assert status.status["availableReplicas"] == 4
    assert status.status["observedGeneration"] == 1


def test_old_empty_sets_beyond_the_history_limit_are_deleted() -> None:
    current = deployment(image="v9")
    current["spec"]["revisionHistoryLimit"] = 1
    olds = [
        replica_set(deployment(image=f"v{n}"), replicas=0, available=0, revision=n)
        for n in (1, 2, 3)
    ]
    new = replica_set(current, replicas=4, available=4, revision=4)
    deleted = [a.key for a in plan_deployment(current, [*olds, new], now=NOW)
               if isinstance(a, DeleteObject)]  # fmt: skip
    assert deleted == [f"apps/replicasets/ns/{olds[0]['metadata']['name']}",
                       f"apps/replicasets/ns/{olds[1]['metadata']['name']}"]  # fmt: skip


def test_an_older_template_coming_back_reuses_its_replicaset_as_the_next_revision() -> None:
    current = deployment(image="v1")
    back = replica_set(current, replicas=0, available=0, revision=1)
    newer = replica_set(deployment(image="v2"), replicas=4, available=4, revision=2)
    template = current["spec"]["template"]
    template["metadata"]["creationTimestamp"] = None  # as kubectl sends it back
    template["spec"]["containers"][0]["resources"] = {}
    actions = plan_deployment(current, [back, newer], now=NOW)
    assert not [a for a in actions if isinstance(a, CreateObject)]
    key = f"apps/replicasets/ns/{back['metadata']['name']}"
    (bumped,) = [a for a in actions if isinstance(a, UpdateObject) and a.key == key]
    assert bumped.body["metadata"]["annotations"][REVISION] == "3"
