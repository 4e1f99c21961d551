"""The simulated kubelet's Pod stages, pure (KWOK's stages are the model): bind to a node,
start (Running and Ready, or the outcome a Pod's annotation asks for), finish (Job-style
Pods succeed), crash-loop restarts. Annotations:

- `kubelet.engine.dev/outcome`: `fail` (phase Failed), `crash-loop` (Running, container
  in CrashLoopBackOff, restarts counting up, never Ready), `never-ready` (Running, not
  Ready), `succeed` (Succeeded after the run time, whatever the restartPolicy);
- `kubelet.engine.dev/run-seconds`: how long a finishing Pod runs (default: the setting).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OUTCOME = "kubelet.engine.dev/outcome"
RUN_SECONDS = "kubelet.engine.dev/run-seconds"
OUTCOMES = ("fail", "crash-loop", "never-ready", "succeed")


@dataclass(frozen=True)
class KubeletSettings:
    """Nodes to run, and the delays (s) of each stage; deletion grace is capped."""

    nodes: int = 1
    start_delay: float = 0.5
    run_seconds: float = 1.0
    crash_period: float = 10.0
    grace_cap: float = 1.0


@dataclass(frozen=True)
class Step:
    """A stage change: the Pod's new spec and status, and when to look at it again."""

    spec: dict[str, Any]
    status: dict[str, Any]
    next_in: float | None


def _annotation(pod: Mapping[str, Any], name: str) -> str:
    return str(((pod.get("metadata") or {}).get("annotations") or {}).get(name, ""))


def run_seconds(pod: Mapping[str, Any], settings: KubeletSettings) -> float:
    """How long a finishing Pod runs before it succeeds."""
    raw = _annotation(pod, RUN_SECONDS)
    try:
        return max(0.0, float(raw)) if raw else settings.run_seconds
    except ValueError:
        return settings.run_seconds


def finishes(pod: Mapping[str, Any]) -> bool:
    """Whether the Pod runs to completion (restartPolicy Never/OnFailure, or `succeed`)."""
    policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
    return policy != "Always" or _annotation(pod, OUTCOME) == "succeed"


def pod_ip(pod: Mapping[str, Any]) -> str:
    """A stable fake Pod IP in 10.244.0.0/16 from the Pod's uid."""
    digest = zlib.crc32(str((pod.get("metadata") or {}).get("uid", "")).encode())
    return f"10.244.{(digest >> 8) % 256}.{digest % 254 + 1}"


def _conditions(now: str, *, ready: bool, reason: str = "") -> list[dict[str, Any]]:
    def condition(kind: str, status: bool) -> dict[str, Any]:
        found: dict[str, Any] = {
            "type": kind,
            "status": "True" if status else "False",
            "lastProbeTime": None,
            "lastTransitionTime": now,
        }
        if not status and reason:
            found["reason"] = reason
        return found

    return [
        condition("PodReadyToStartContainers", True),
        condition("Initialized", True),
        condition("Ready", ready),
        condition("ContainersReady", ready),
        condition("PodScheduled", True),
    ]


def _containers(
    pod: Mapping[str, Any], state: dict[str, Any], *, ready: bool, restarts: int = 0
) -> list[dict[str, Any]]:
    return [
        {
            "name": c.get("name", ""),
            "image": c.get("image", ""),
            "imageID": "",
            "containerID": f"sim://{c.get('name', '')}",
            "ready": ready,
            "restartCount": restarts,
            "started": "running" in state,
            "state": state,
        }
        for c in (pod.get("spec") or {}).get("containers") or ()
    ]


def advance(
    pod: Mapping[str, Any], *, node: str, node_ip: str, now: str, settings: KubeletSettings
) -> Step | None:
    """The Pod's next stage, or None when it has none (running for good, or finished)."""
    spec = dict(pod.get("spec") or {})
    status = dict(pod.get("status") or {})
    phase = status.get("phase") or "Pending"
    outcome = _annotation(pod, OUTCOME)
    if not spec.get("nodeName"):
        spec["nodeName"] = node
        scheduled = {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": now,
        }
        return Step(
            spec,
            {"phase": "Pending", "conditions": [scheduled], "qosClass": "BestEffort"},
            settings.start_delay,
        )
    base = {
        "hostIP": node_ip,
        "podIP": pod_ip(pod),
        "podIPs": [{"ip": pod_ip(pod)}],
        "startTime": status.get("startTime", now),
        "qosClass": "BestEffort",
    }
    if phase == "Pending":
        if outcome == "fail":
            state = {
                "terminated": {
                    "exitCode": 1,
                    "reason": "Error",
                    "startedAt": now,
                    "finishedAt": now,
                }
            }
            return Step(
                spec,
                {
                    **base,
                    "phase": "Failed",
                    "conditions": _conditions(now, ready=False, reason="PodFailed"),
                    "containerStatuses": _containers(pod, state, ready=False),
                },
                None,
            )
        if outcome == "crash-loop":
            return _crash(pod, spec, base=base, now=now, restarts=1, settings=settings)
        ready = outcome != "never-ready"
        state = {"running": {"startedAt": now}}
        reason = "" if ready else "ContainersNotReady"
        running = {
            **base,
            "phase": "Running",
            "conditions": _conditions(now, ready=ready, reason=reason),
            "containerStatuses": _containers(pod, state, ready=ready),
        }
        return Step(spec, running, run_seconds(pod, settings) if finishes(pod) else None)
    if phase == "Running" and outcome == "crash-loop":
        restarts = max(
            (c.get("restartCount", 0) for c in status.get("containerStatuses") or ()), default=0
        )
        return _crash(pod, spec, base=base, now=now, restarts=restarts + 1, settings=settings)
    if phase == "Running" and finishes(pod):
        state = {
            "terminated": {
                "exitCode": 0,
                "reason": "Completed",
                "startedAt": base["startTime"],
                "finishedAt": now,
            }
        }
        done = {
            **base,
            "phase": "Succeeded",
            "conditions": _conditions(now, ready=False, reason="PodCompleted"),
            "containerStatuses": _containers(pod, state, ready=False),
        }
        return Step(spec, done, None)
    return None


def _crash(
    pod: Mapping[str, Any],
    spec: dict[str, Any],
    *,
    base: dict[str, Any],
    now: str,
    restarts: int,
    settings: KubeletSettings,
) -> Step:
    state = {
        "waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}
    }
    status = {
        **base,
        "phase": "Running",
        "conditions": _conditions(now, ready=False, reason="ContainersNotReady"),
        "containerStatuses": _containers(pod, state, ready=False, restarts=restarts),
    }
    return Step(spec, status, settings.crash_period)
