"""The watcher's state machine as data: states, the outcome of acting in a state, and one
pure step function ``(step, outcome) → next step`` (after kube-rs' watcher).

Expected flow: Listing → Watching(rv) ⇄ Watching(rv') … ; a 410 from a watch, or a
resourceVersion too large for the server (504 `ResourceVersionTooLarge`) → Listing at
once (exactly one relist); any other failure → BackingOff(delay) → the state it left.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from engine.watchers.backoff import BackoffPolicy


class RestartReason(StrEnum):
    """Why a list or watch ended other than cleanly; metric label values."""

    EXPIRED = "expired"
    TOO_LARGE = "too_large_resource_version"
    """The server has not reached the resume point (restored from a backup): relist."""
    RELIST = "relist_requested"
    """`Watcher.relist` was asked (another kind's watch was refused as too large or
    expired: the server may have been restored)."""
    THROTTLED = "throttled"
    SERVER_ERROR = "server_error"
    CLIENT_ERROR = "client_error"
    CONNECTION_ERROR = "connection_error"
    INACTIVE = "inactive"
    SINK_FAILED = "sink_failed"


@dataclass(frozen=True)
class Listing:
    """List the collection (initially, or to recover from a 410) and report differences."""


@dataclass(frozen=True)
class Watching:
    """Watch from `resource_version` (the list's, or the last event's or bookmark's)."""

    resource_version: str


@dataclass(frozen=True)
class BackingOff:
    """Wait `delay` seconds, then resume `resume`."""

    delay: float
    resume: Listing | Watching
    reason: RestartReason


WatcherState = Listing | Watching | BackingOff


@dataclass(frozen=True)
class Listed:
    """The list completed and every difference was delivered."""

    resource_version: str


@dataclass(frozen=True)
class StreamClosed:
    """The watch ended cleanly (server timeout or EOF); resume from `resource_version`."""

    resource_version: str


@dataclass(frozen=True)
class Failed:
    """The list or watch failed. `resource_version` is the last delivered point (watch only);
    `progressed` says the watch delivered something first, which resets the backoff;
    `retry_after` is the server's Retry-After in seconds (already capped), if any."""

    reason: RestartReason
    resource_version: str | None = None
    progressed: bool = False
    retry_after: float | None = None


@dataclass(frozen=True)
class Waited:
    """The backoff delay has elapsed."""


Outcome = Listed | StreamClosed | Failed | Waited


@dataclass(frozen=True)
class Step:
    """The current state and the number of consecutive failures (the backoff attempt)."""

    state: WatcherState
    failures: int = 0


INITIAL = Step(Listing())


def next_step(step: Step, outcome: Outcome, *, policy: BackoffPolicy, jitter_unit: float) -> Step:
    """The step after `outcome` happened in `step.state`.

    Guarantees: pure. A 410 or a too-large resourceVersion from a watch relists at once
    without counting a failure; a 410 from a list backs off (the server keeps refusing,
    do not spin). Every other failure backs off by
    ``max(policy.delay(failures, jitter_unit), retry_after)`` and resumes the same
    activity (a watch from the last delivered resourceVersion). Success resets failures.
    Errors: `ValueError` for an outcome that cannot happen in the state (e.g. `Waited` while
    watching).
    """
    state = step.state
    match state, outcome:
        case Listing(), Listed(resource_version=version):
            return Step(Watching(version))
        case Watching(), StreamClosed(resource_version=version):
            return Step(Watching(version))
        case Watching(), Failed(
            reason=RestartReason.EXPIRED | RestartReason.TOO_LARGE | RestartReason.RELIST
        ):
            return Step(Listing(), failures=step.failures)
        case Listing() | Watching(), Failed() as failure:
            failures = 0 if failure.progressed else step.failures
            delay = policy.delay(failures, jitter_unit)
            if failure.retry_after is not None:
                delay = max(delay, failure.retry_after)
            resume: Listing | Watching = state
            if isinstance(state, Watching) and failure.resource_version:
                resume = Watching(failure.resource_version)
            return Step(BackingOff(delay, resume, failure.reason), failures=failures + 1)
        case BackingOff(resume=resume), Waited():
            return Step(resume, failures=step.failures)
    raise ValueError(f"outcome {outcome!r} cannot happen in state {state!r}")
