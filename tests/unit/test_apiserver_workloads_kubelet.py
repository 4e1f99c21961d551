"""The simulated kubelet's Pod stages (pure), built-in printer cells and schema admission."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.apiserver.kubelet.pod_stages import OUTCOME, RUN_SECONDS, KubeletSettings, advance
from engine.apiserver.schema.builtin_admission import admit_builtin
from engine.apiserver.store.errors import ApiError
from engine.apiserver.store.resource_types import BUILTINS
from engine.apiserver.verbs.builtin_printers import PRINTERS

NOW = "2024-01-01T00:00:00Z"
SETTINGS = KubeletSettings(start_delay=0.5, run_seconds=2.0, crash_period=10.0)


def pod(*, restart: str = "Always", outcome: str = "", **extra: str) -> dict[str, Any]:
    annotations = {OUTCOME: outcome} if outcome else {}
    annotations.update(extra)
    spec = {"restartPolicy": restart, "containers": [{"name": "c", "image": "i"}]}
    return {"metadata": {"name": "p", "uid": "u", "annotations": annotations}, "spec": spec}


def step_through(body: dict[str, Any], steps: int) -> tuple[dict[str, Any], float | None]:
    delay: float | None = None
    for _ in range(steps):
        step = advance(body, node="n1", node_ip="10.0.0.1", now=NOW, settings=SETTINGS)
        assert step is not None
        body = {**body, "spec": step.spec, "status": step.status}
        delay = step.next_in
    return body, delay


def ready(body: dict[str, Any]) -> str:
    return next(c["status"] for c in body["status"]["conditions"] if c["type"] == "Ready")


def test_an_unbound_pod_is_bound_and_pending_then_running_and_ready() -> None:
    bound, delay = step_through(pod(), 1)
    assert bound["spec"]["nodeName"] == "n1"
    assert bound["status"]["phase"] == "Pending"
    assert delay == 0.5
    running, delay = step_through(bound, 1)
    assert running["status"]["phase"] == "Running"
    assert ready(running) == "True"
    assert running["status"]["podIP"].startswith("10.244.")
    assert delay is None
    assert advance(running, node="n1", node_ip="x", now=NOW, settings=SETTINGS) is None


def test_a_never_restarting_pod_succeeds_after_its_run_time() -> None:
    running, delay = step_through(pod(restart="Never", **{RUN_SECONDS: "0.25"}), 2)
    assert delay == 0.25
    done, _ = step_through(running, 1)
    assert done["status"]["phase"] == "Succeeded"
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"


@pytest.mark.parametrize(
    ("outcome", "phase", "is_ready"),
    [
        pytest.param("fail", "Failed", "False", id="fail"),
        pytest.param("never-ready", "Running", "False", id="never-ready"),
        pytest.param("crash-loop", "Running", "False", id="crash-loop"),
    ],
)
def test_the_outcome_annotation_decides_how_the_pod_starts(
    outcome: str, phase: str, is_ready: str
) -> None:
    started, _ = step_through(pod(outcome=outcome), 2)
    assert started["status"]["phase"] == phase
    assert ready(started) == is_ready


def test_a_crash_looping_pod_counts_restarts_up() -> None:
    looping, delay = step_through(pod(outcome="crash-loop"), 4)
    status = looping["status"]["containerStatuses"][0]
    assert status["restartCount"] == 3
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert delay == SETTINGS.crash_period


def cells(kind: tuple[str, str], obj: dict[str, Any]) -> list[Any]:
    return PRINTERS[kind].cells(obj, datetime(2024, 1, 1, 0, 1, tzinfo=UTC))


def test_pod_cells_show_ready_status_restarts_and_age() -> None:
    looping, _ = step_through(pod(outcome="crash-loop"), 2)
    looping["metadata"]["creationTimestamp"] = NOW
    assert cells(("", "Pod"), looping)[:5] == ["p", "0/1", "CrashLoopBackOff", 1, "60s"]


def test_replicaset_and_deployment_cells_show_their_counts() -> None:
    body = {"metadata": {"name": "x", "creationTimestamp": NOW}, "spec": {"replicas": 3},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3,
                       "availableReplicas": 2}}  # fmt: skip
    assert cells(("apps", "ReplicaSet"), body)[:5] == ["x", 3, 3, 2, "60s"]
    assert cells(("apps", "Deployment"), body)[:5] == ["x", "2/3", 3, 2, "60s"]


def _type(kind: str) -> Any:
    return next(t for t in BUILTINS if t.kind == kind)


def test_unknown_pod_fields_are_a_strict_error_and_dropped_otherwise() -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "uid": "u"},
            "spec": {"containers": [{"name": "c", "image": "i", "colour": "red"}]}}  # fmt: skip
    with pytest.raises(ApiError) as caught:
        admit_builtin(_type("Pod"), body, field_validation="Strict")
    assert 'unknown field "spec.containers[0].colour"' in caught.value.message
    kept, warnings = admit_builtin(_type("Pod"), body, field_validation="Warn")
    assert "colour" not in kept["spec"]["containers"][0]
    assert warnings == ('unknown field "spec.containers[0].colour"',)
    assert kept["spec"]["restartPolicy"] == "Always"


def test_a_job_gets_its_controller_uid_selector_and_template_labels() -> None:
    template = {"spec": {"restartPolicy": "Never", "containers": []}}
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "uid": "u1"},
            "spec": {"template": template}}  # fmt: skip
    admitted, _ = admit_builtin(_type("Job"), body, field_validation="Strict")
    spec = admitted["spec"]
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}
    assert spec["template"]["metadata"]["labels"]["job-name"] == "j"
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
