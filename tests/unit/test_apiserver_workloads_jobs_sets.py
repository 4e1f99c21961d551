"""Job, StatefulSet and Namespace planning (pure)."""

from __future__ import annotations

from typing import Any

from engine.apiserver.controllers.actions import (
    CreateObject,
    DeleteObject,
    RecordEvent,
    SetStatus,
    UpdateObject,
)
from engine.apiserver.controllers.job_plan import plan_job
from engine.apiserver.controllers.namespace_plan import plan_namespace
from engine.apiserver.controllers.statefulset_plan import plan_statefulset

NOW = "2024-01-01T00:00:00Z"


def job(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "batch", "namespace": "ns", "uid": "j-uid", "generation": 1},
        "spec": {"completions": 2, "parallelism": 1, "backoffLimit": 1,
                 "template": {"spec": {"restartPolicy": "Never", "containers": []}}, **spec},
    }  # fmt: skip


def pod(name: str, phase: str, *, ready: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"},
            "status": {"phase": phase,
                       "conditions": [{"type": "Ready", "status": str(ready)}]}}  # fmt: skip


def of_type(actions: list[Any], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def test_a_job_runs_parallelism_pods_at_a_time() -> None:
    actions = plan_job(job(parallelism=2, completions=3), [], now=NOW)
    assert len(of_type(actions, CreateObject)) == 2


def test_a_job_with_enough_successes_is_complete() -> None:
    actions = plan_job(job(), [pod("a", "Succeeded"), pod("b", "Succeeded")], now=NOW)
    (status,) = of_type(actions, SetStatus)
    complete = [c for c in status.status["conditions"] if c["type"] == "Complete"]
    assert complete[0]["status"] == "True"
    assert status.status["succeeded"] == 2
    assert status.status["completionTime"] == NOW
    assert of_type(actions, CreateObject) == []


def test_a_failed_pod_is_replaced_within_the_backoff_limit() -> None:
    actions = plan_job(job(), [pod("a", "Failed")], now=NOW)
    assert len(of_type(actions, CreateObject)) == 1


def test_failures_past_the_backoff_limit_fail_the_job() -> None:
    actions = plan_job(job(), [pod("a", "Failed"), pod("b", "Failed")], now=NOW)
    (status,) = of_type(actions, SetStatus)
    failed = [c for c in status.status["conditions"] if c["type"] == "Failed"]
    assert failed[0]["reason"] == "BackoffLimitExceeded"
    assert of_type(actions, RecordEvent)[0].event.type == "Warning"
    assert of_type(actions, CreateObject) == []


def statefulset(replicas: int, policy: str = "OrderedReady") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "ns", "uid": "s-uid", "generation": 1},
        "spec": {"replicas": replicas, "podManagementPolicy": policy,
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {}}},
    }  # fmt: skip


def test_statefulset_creates_only_the_next_ordinal_once_the_previous_is_ready() -> None:
    created = of_type(plan_statefulset(statefulset(3), []), CreateObject)
    assert [c.body["metadata"]["name"] for c in created] == ["db-0"]
    waiting = plan_statefulset(statefulset(3), [pod("db-0", "Pending")])
    assert of_type(waiting, CreateObject) == []
    running = plan_statefulset(statefulset(3), [pod("db-0", "Running", ready=True)])
    assert [c.body["metadata"]["name"] for c in of_type(running, CreateObject)] == ["db-1"]


def test_parallel_statefulset_creates_every_missing_ordinal() -> None:
    created = of_type(plan_statefulset(statefulset(3, "Parallel"), []), CreateObject)
    assert [c.body["metadata"]["name"] for c in created] == ["db-0", "db-1", "db-2"]


def test_statefulset_scales_down_from_the_highest_ordinal() -> None:
    pods = [pod(f"db-{n}", "Running", ready=True) for n in range(3)]
    deleted = of_type(plan_statefulset(statefulset(1), pods), DeleteObject)
    assert [d.key for d in deleted] == ["/pods/ns/db-2"]


def namespace(*, deleting: bool, finalizers: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "team", "resourceVersion": "4"}
    if deleting:
        meta["deletionTimestamp"] = NOW
    return {"kind": "Namespace", "metadata": meta, "spec": {"finalizers": finalizers}}


def test_a_terminating_namespace_deletes_its_contents_first() -> None:
    going = {"metadata": {"name": "p", "deletionTimestamp": NOW}}
    contents = [("/configmaps/team/a", {"metadata": {"name": "a"}}), ("/pods/team/p", going)]
    actions = plan_namespace(namespace(deleting=True, finalizers=["kubernetes"]), contents)
    assert actions == [DeleteObject("/configmaps/team/a")]


def test_an_empty_terminating_namespace_drops_its_kubernetes_finalizer() -> None:
    (update,) = plan_namespace(namespace(deleting=True, finalizers=["kubernetes"]), [])
    assert isinstance(update, UpdateObject)
    assert update.body["spec"]["finalizers"] == []


def test_a_live_namespace_needs_nothing() -> None:
    assert plan_namespace(namespace(deleting=False, finalizers=["kubernetes"]), []) == []
