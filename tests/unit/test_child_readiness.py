"""The checks `ctx.wait_for_child` applies to a live child, and drift over lists of
objects that the server fills with defaults."""

from __future__ import annotations

from typing import Any

import pytest

from engine.effects.errors import PermanentError
from engine.runtime.reconcile.child_readiness import (
    deployment_available,
    exists,
    job_complete,
    readiness_of,
    statefulset_ready,
)
from engine.runtime.reconcile.children import differs


def deployment(wanted: int, generation: int = 2, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": wanted},
        "status": status,
    }


@pytest.mark.parametrize(
    ("live", "lacking"),
    [
        (deployment(2, observedGeneration=1), "generation 2 not observed yet"),
        (deployment(2, observedGeneration=2, updatedReplicas=1), "1 of 2 replicas updated"),
        (
            deployment(2, observedGeneration=2, updatedReplicas=2, replicas=3),
            "1 old replicas pending termination",
        ),
        (
            deployment(2, observedGeneration=2, updatedReplicas=2, replicas=2, availableReplicas=1),
            "1 of 2 replicas available",
        ),
        (
            deployment(2, observedGeneration=2, updatedReplicas=2, replicas=2, availableReplicas=2),
            None,
        ),
        (deployment(0, observedGeneration=2), None),
    ],
)
def test_deployment_is_available_once_its_newest_generation_is_rolled_out(
    live: dict[str, Any], lacking: str | None
) -> None:
    assert deployment_available(live) == lacking


def test_a_deployment_without_replicas_in_its_spec_wants_one() -> None:
    live = {"metadata": {"generation": 1}, "spec": {}, "status": {"observedGeneration": 1}}
    assert deployment_available(live) == "0 of 1 replicas updated"


def test_statefulset_is_ready_when_every_replica_is() -> None:
    live = deployment(3, observedGeneration=2, readyReplicas=2)
    assert statefulset_ready(live) == "2 of 3 replicas ready"
    live["status"]["readyReplicas"] = 3
    assert statefulset_ready(live) is None


def test_job_is_ready_when_complete_and_a_failed_job_never_will_be() -> None:
    running = {"metadata": {"name": "once"}, "status": {"succeeded": 0}}
    assert job_complete(running) == "0 pods succeeded, not complete"
    complete = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    assert job_complete(complete) is None
    failed = {
        "metadata": {"name": "once"},
        "status": {
            "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
        },
    }
    with pytest.raises(PermanentError, match="Job once failed \\(BackoffLimitExceeded\\)"):
        job_complete(failed)


def test_each_kind_gets_its_own_check() -> None:
    assert readiness_of("apps/v1", "Deployment") is deployment_available
    assert readiness_of("apps/v1", "StatefulSet") is statefulset_ready
    assert readiness_of("batch/v1", "Job") is job_complete
    assert readiness_of("v1", "ConfigMap") is exists
    assert readiness_of("example.dev/v1", "Deployment") is exists


CONTAINERS = [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 8080}]}]


def test_server_defaults_inside_a_list_of_objects_are_no_drift() -> None:
    applied = {"spec": {"template": {"spec": {"containers": CONTAINERS}}}}
    defaulted = [
        {
            "name": "web",
            "image": "nginx:1.27",
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        }
    ]
    assert not differs({"spec": {"template": {"spec": {"containers": defaulted}}}}, applied)


@pytest.mark.parametrize(
    "containers",
    [
        [{"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 8080}]}],
        [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 9090}]}],
        [*CONTAINERS, {"name": "sidecar", "image": "busybox"}],
        [],
        "not a list",
    ],
    ids=["image", "nested-port", "extra-item", "emptied", "replaced"],
)
def test_a_changed_item_in_a_list_of_objects_is_drift(containers: Any) -> None:
    applied = {"spec": {"template": {"spec": {"containers": CONTAINERS}}}}
    assert differs({"spec": {"template": {"spec": {"containers": containers}}}}, applied)


def test_lists_of_scalars_still_compare_whole() -> None:
    assert differs({"args": ["a", "b", "c"]}, {"args": ["a", "b"]})
    assert not differs({"args": ["a", "b"]}, {"args": ["a", "b"]})
