"""Printer columns of built-in kinds, as the real server's Table output shows them
(pods READY STATUS RESTARTS AGE, replicasets DESIRED CURRENT READY AGE, …): the column
definitions and a function computing one object's cells."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.apiserver.verbs.table_output import AGE_COLUMN, NAME_COLUMN, format_age

Cells = Callable[[Mapping[str, Any], datetime], list[Any]]


@dataclass(frozen=True)
class Printer:
    """Column definitions (Name first) and the cells of one object, in the same order."""

    columns: tuple[Mapping[str, Any], ...]
    cells: Cells


def _column(name: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    return {"name": name, "type": kind, "format": "", "description": name, "priority": priority}


def _seconds_since(stamp: Any, now: datetime) -> float | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (now - then).total_seconds()


def _age(obj: Mapping[str, Any], now: datetime) -> str:
    seconds = _seconds_since((obj.get("metadata") or {}).get("creationTimestamp"), now)
    return "<unknown>" if seconds is None else format_age(seconds)


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


def pod_status_text(pod: Mapping[str, Any]) -> str:
    """The STATUS kubectl shows for a Pod (Terminating, a container's reason, or the phase)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    status = _status(pod)
    reason = str(status.get("phase") or "Pending")
    for container in status.get("containerStatuses") or ():
        state = container.get("state") or {}
        waiting = (state.get("waiting") or {}).get("reason")
        terminated = state.get("terminated") or {}
        if waiting:
            reason = str(waiting)
        elif terminated.get("reason"):
            reason = str(terminated["reason"])
    return reason


def _pod_cells(pod: Mapping[str, Any], now: datetime) -> list[Any]:
    containers = _spec(pod).get("containers") or ()
    statuses = _status(pod).get("containerStatuses") or ()
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
    return [
        (pod.get("metadata") or {}).get("name", ""),
        f"{ready}/{len(containers)}",
        pod_status_text(pod),
        restarts,
        _age(pod, now),
        _status(pod).get("podIP") or "<none>",
        _spec(pod).get("nodeName") or "<none>",
    ]


def _images(obj: Mapping[str, Any]) -> tuple[str, str]:
    containers = ((_spec(obj).get("template") or {}).get("spec") or {}).get("containers") or ()
    names = ",".join(str(c.get("name", "")) for c in containers)
    return names, ",".join(str(c.get("image", "")) for c in containers)


def _selector(obj: Mapping[str, Any]) -> str:
    labels = (_spec(obj).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _replicaset_cells(rs: Mapping[str, Any], now: datetime) -> list[Any]:
    status = _status(rs)
    names, images = _images(rs)
    return [
        (rs.get("metadata") or {}).get("name", ""),
        int(_spec(rs).get("replicas", 1)),
        int(status.get("replicas") or 0),
        int(status.get("readyReplicas") or 0),
        _age(rs, now),
        names,
        images,
        _selector(rs),
    ]


def _deployment_cells(deployment: Mapping[str, Any], now: datetime) -> list[Any]:
    status = _status(deployment)
    names, images = _images(deployment)
    desired = int(_spec(deployment).get("replicas", 1))
    return [
        (deployment.get("metadata") or {}).get("name", ""),
        f"{int(status.get('readyReplicas') or 0)}/{desired}",
        int(status.get("updatedReplicas") or 0),
        int(status.get("availableReplicas") or 0),
        _age(deployment, now),
        names,
        images,
        _selector(deployment),
    ]


def _statefulset_cells(sts: Mapping[str, Any], now: datetime) -> list[Any]:
    names, images = _images(sts)
    ready = int(_status(sts).get("readyReplicas") or 0)
    return [
        (sts.get("metadata") or {}).get("name", ""),
        f"{ready}/{int(_spec(sts).get('replicas', 1))}",
        _age(sts, now),
        names,
        images,
    ]


def _job_state(job: Mapping[str, Any]) -> str:
    for condition in _status(job).get("conditions") or ():
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return str(condition["type"])
    return "Suspended" if _spec(job).get("suspend") else "Running"


def _job_cells(job: Mapping[str, Any], now: datetime) -> list[Any]:
    status = _status(job)
    completions = _spec(job).get("completions")
    succeeded = int(status.get("succeeded") or 0)
    shown = f"{succeeded}/{completions}" if completions is not None else f"{succeeded}/1 of 1"
    started = _seconds_since(status.get("startTime"), now)
    finished = _seconds_since(status.get("completionTime"), now)
    duration = "" if started is None else format_age(started - (finished or 0.0))
    names, images = _images(job)
    return [
        (job.get("metadata") or {}).get("name", ""),
        _job_state(job),
        shown,
        duration,
        _age(job, now),
        names,
        images,
        _selector(job),
    ]


def _cronjob_cells(cronjob: Mapping[str, Any], now: datetime) -> list[Any]:
    spec = _spec(cronjob)
    last = _seconds_since(_status(cronjob).get("lastScheduleTime"), now)
    return [
        (cronjob.get("metadata") or {}).get("name", ""),
        spec.get("schedule", ""),
        spec.get("timeZone") or "<none>",
        "True" if spec.get("suspend") else "False",
        len(_status(cronjob).get("active") or ()),
        "<none>" if last is None else format_age(last),
        _age(cronjob, now),
    ]


def _node_cells(node: Mapping[str, Any], now: datetime) -> list[Any]:
    ready = "Unknown"
    for condition in _status(node).get("conditions") or ():
        if condition.get("type") == "Ready":
            ready = "Ready" if condition.get("status") == "True" else "NotReady"
    if _spec(node).get("unschedulable"):
        ready += ",SchedulingDisabled"
    labels = (node.get("metadata") or {}).get("labels") or {}
    roles = sorted(
        k.removeprefix("node-role.kubernetes.io/")
        for k in labels
        if k.startswith("node-role.kubernetes.io/")
    )
    return [
        (node.get("metadata") or {}).get("name", ""),
        ready,
        ",".join(roles) or "<none>",
        _age(node, now),
        (_status(node).get("nodeInfo") or {}).get("kubeletVersion", ""),
    ]


def _namespace_cells(namespace: Mapping[str, Any], now: datetime) -> list[Any]:
    return [
        (namespace.get("metadata") or {}).get("name", ""),
        _status(namespace).get("phase") or "Active",
        _age(namespace, now),
    ]


_NAME, _AGE = dict(NAME_COLUMN), dict(AGE_COLUMN)


def _webhook_configuration_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    name = (obj.get("metadata") or {}).get("name", "")
    return [name, len(obj.get("webhooks") or ()), _age(obj, now)]


PRINTERS: Mapping[tuple[str, str], Printer] = {
    ("", "Pod"): Printer(
        (_NAME, _column("Ready"), _column("Status"), _column("Restarts", "integer"), _AGE,
         _column("IP", priority=1), _column("Node", priority=1)),
        _pod_cells,
    ),
    ("apps", "ReplicaSet"): Printer(
        (_NAME, _column("Desired", "integer"), _column("Current", "integer"),
         _column("Ready", "integer"), _AGE, _column("Containers", priority=1),
         _column("Images", priority=1), _column("Selector", priority=1)),
        _replicaset_cells,
    ),
    ("apps", "Deployment"): Printer(
        (_NAME, _column("Ready"), _column("Up-to-date", "integer"),
         _column("Available", "integer"), _AGE, _column("Containers", priority=1),
         _column("Images", priority=1), _column("Selector", priority=1)),
        _deployment_cells,
    ),
    ("apps", "StatefulSet"): Printer(
        (_NAME, _column("Ready"), _AGE, _column("Containers", priority=1),
         _column("Images", priority=1)),
        _statefulset_cells,
    ),
    ("batch", "Job"): Printer(
        (_NAME, _column("Status"), _column("Completions"), _column("Duration"), _AGE,
         _column("Containers", priority=1), _column("Images", priority=1),
         _column("Selector", priority=1)),
        _job_cells,
    ),
    ("batch", "CronJob"): Printer(
        (_NAME, _column("Schedule"), _column("Timezone"), _column("Suspend"),
         _column("Active", "integer"), _column("Last Schedule"), _AGE),
        _cronjob_cells,
    ),
    ("", "Node"): Printer(
        (_NAME, _column("Status"), _column("Roles"), _AGE, _column("Version")), _node_cells
    ),
    ("", "Namespace"): Printer((_NAME, _column("Status"), _AGE), _namespace_cells),
    **{("admissionregistration.k8s.io", kind): Printer(
        (_NAME, _column("Webhooks", "integer"), _AGE), _webhook_configuration_cells)
       for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")},
}  # fmt: skip
