"""Failpoints for tests: the named spots where the engine can be made to crash
(`kill`), fail (`raise`), stall (`sleep(s)`) or hang (`hang`), armed in-process for a
block or through the environment of an engine subprocess.

In-process arming follows the context: arm before the engine starts (`with
arm_failpoints(...)` around `run_operator`), since its tasks copy the context then.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from engine.failpoint import ENVIRONMENT_VARIABLE, FailpointError, arm, parse_action, point_name

KNOWN_FAILPOINTS = (
    "effect.before_send",
    "effect.after_send",
    "effect.after_record",
    "journal.before_commit",
    "journal.after_commit",
    "status.before_patch",
    "status.after_patch",
    "finalizer.before_remove",
    "finalizer.after_remove",
    "lease.acquired",
    "snapshot.before_commit",
    "compaction.after_segment",
    "compaction.before_commit",
    "migration.before_commit",
)
"""Every failpoint the engine's code declares (a test keeps this list complete)."""


def _checked(actions: Mapping[str, str]) -> dict[str, str]:
    for name, action in actions.items():
        if point_name(name) not in KNOWN_FAILPOINTS:
            raise FailpointError(
                f"unknown failpoint {name!r}; choose one of {', '.join(KNOWN_FAILPOINTS)}"
            )
        parse_action(action)
    return dict(actions)


@contextlib.contextmanager
def arm_failpoints(**actions: str) -> Iterator[None]:
    """Arm failpoints for the `with` body in this context, e.g.
    `with arm_failpoints(**{"effect.after_send": "raise"}):`.
    Errors: `FailpointError` for an unknown name or action."""
    with arm(**_checked(actions)):
        yield


def failpoint_env(**actions: str) -> dict[str, str]:
    """The environment variable that arms failpoints in an engine subprocess, e.g.
    `failpoint_env(**{"effect.after_send": "kill"})` → `{"ENGINE_FAILPOINTS": ...}`."""
    checked = _checked(actions)
    return {ENVIRONMENT_VARIABLE: ";".join(f"{n}={a}" for n, a in checked.items())}
