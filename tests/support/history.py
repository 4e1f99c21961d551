"""History checkers for the fault tests, run on what the scenario left behind: the
registry's call log (the effect target as oracle), the engines' journals and the fault
proxy's request log. Each returns the violations it found (empty: the property holds),
so a test can report every violation at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from click.testing import CliRunner

from engine.cli.main import cli
from engine.fsm import events as ev
from engine.journal.sqlite import SqliteJournal
from engine.replay.verify import verify_journal
from engine.runtime.reconcile.operator import Operator
from tests.support.fault_proxy import THROTTLE, RequestSeen

ACCEPTED = ("applied", "replayed")
"""Call outcomes the registry accepted (answered from its state, not refused)."""


@dataclass(frozen=True)
class RegistryLog:
    """The registry's oracle log: every call in arrival order, and applied counts per key."""

    calls: tuple[dict[str, Any], ...]
    applied: dict[str, int]

    @classmethod
    async def fetch(cls, url: str) -> RegistryLog:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/calls") as response:
                calls = tuple((await response.json())["items"])
            async with session.get(url + "/applied") as response:
                applied = dict((await response.json())["counts"])
        return cls(calls, applied)

    def keys_applied(self) -> set[str]:
        return {c["idempotency_key"] for c in self.calls if c["outcome"] == "applied"}


def applied_more_than_once(log: RegistryLog) -> list[str]:
    """(a) Keys with more than one `applied` call, or an applied count other than 1."""
    counts = Counter(c["idempotency_key"] for c in log.calls if c["outcome"] == "applied")
    problems = [f"{key}: applied {n} times in /calls" for key, n in counts.items() if n > 1]
    problems += [f"{key}: /applied count {n}" for key, n in log.applied.items() if n != 1]
    if set(log.applied) != set(counts):
        problems.append("the keys of /applied and the applied calls of /calls differ")
    return problems


def accepted_under_stale_term(log: RegistryLog) -> list[str]:
    """(d) Calls accepted under a term lower than one the registry had already seen."""
    highest, problems = 0, []
    for call in log.calls:
        if call["outcome"] in ACCEPTED and call["term"] < highest:
            problems.append(
                f"{call['method']} {call['name']} key {call['idempotency_key']} accepted "
                f"under term {call['term']} after term {highest}"
            )
        if call["outcome"] != "stale":
            highest = max(highest, call["term"])
    return problems


def key_reused_for_another_request(log: RegistryLog) -> list[str]:
    """Calls the registry refused because their idempotency key had been used before
    with a different request (outcome `conflict`): one key must always mean one request."""
    return [
        f"{c['method']} {c['name']} reused key {c['idempotency_key']} with another request"
        for c in log.calls
        if c["outcome"] == "conflict"
    ]


@dataclass(frozen=True)
class JournalEffects:
    """Per idempotency key: attempts started and successes recorded, in one journal."""

    path: Path
    started: Counter[str]
    succeeded: Counter[str]
    attempts: list[tuple[float, int | None]]
    """(epoch seconds, term) of every `EffectStarted`, in journal order."""
    elected_terms: list[int]
    """The terms of this replica's `LeaderElected` records."""

    @classmethod
    async def read(cls, path: Path) -> JournalEffects:
        started: Counter[str] = Counter()
        succeeded: Counter[str] = Counter()
        attempts: list[tuple[float, int | None]] = []
        elected: list[int] = []
        journal = await SqliteJournal.open(path, readonly=True)
        try:
            async for record in journal.read_all():
                if record.type == ev.EFFECT_STARTED:
                    started[record.data["key"]] += 1
                    attempts.append((record.at.timestamp(), record.data.get("term")))
                elif record.type == ev.EFFECT_SUCCEEDED:
                    succeeded[record.data["key"]] += 1
                elif record.type == ev.LEADER_ELECTED:
                    elected.append(int(record.data["term"]))
        finally:
            await journal.close()
        return cls(path, started, succeeded, attempts, elected)


def succeeded_more_than_once(journals: Iterable[JournalEffects]) -> list[str]:
    """(b) Keys with more than one `EffectSucceeded` in one journal."""
    return [
        f"{effects.path}: {key} succeeded {n} times"
        for effects in journals
        for key, n in effects.succeeded.items()
        if n > 1
    ]


def successes_without_target_call(
    journals: Iterable[JournalEffects], log: RegistryLog, *, steps: Sequence[str]
) -> list[str]:
    """Keys of `steps` (e.g. register) a journal records as succeeded that the registry
    never accepted: a success the effect target did not see."""
    accepted = {c["idempotency_key"] for c in log.calls if c["outcome"] in ACCEPTED}
    return [
        f"{effects.path}: {key} succeeded but the registry never accepted it"
        for effects in journals
        for key in effects.succeeded
        if key.split(":")[2] in steps and key not in accepted
    ]


def applied_without_success(journals: Iterable[JournalEffects], log: RegistryLog) -> list[str]:
    """Keys the registry applied that no journal records as succeeded (an effect executed
    but never observed: R3 says each effect is observed exactly once)."""
    succeeded = {key for effects in journals for key in effects.succeeded}
    return sorted(key for key in log.keys_applied() if key not in succeeded)


async def journal_check(path: Path) -> tuple[int, str]:
    """(c) `engine journal check PATH` (the real command, run in a thread): its exit code
    and output, with the error when it raised one."""
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["journal", "check", str(path)])
    error = "" if result.exception is None else f" ({result.exception!r})"
    return result.exit_code, result.output.strip() + error


async def assert_checked_and_verified(path: Path, operator: Operator) -> None:
    """(c) `engine journal check` passes on the journal at `path`, and its replay through
    `operator`'s handlers (`replay --verify`) finds no divergence."""
    code, out = await journal_check(path)
    assert code == 0, out
    report = await verify_journal(path, operator)
    assert report.divergence is None, report.divergence


def retry_after_ignored(requests: Sequence[RequestSeen], *, slack: float = 0.01) -> list[str]:
    """(e) 429s with Retry-After R whose path (same kind: watch or not) got its next request,
    among those sent after the 429 was answered, sooner than R after that answer.

    POSTs to a collection of Events are left out: Event writes are best effort and never
    retried, so the next POST there is another object's Event, not a retry.
    """
    problems = []
    for throttled in requests:
        if throttled.fault != THROTTLE or throttled.retry_after is None:
            continue
        if throttled.method == "POST" and throttled.path.endswith("/events"):
            continue
        same = (throttled.path, throttled.watch)
        after = throttled.answered_at
        later = [r for r in requests if (r.path, r.watch) == same and r.at > after]
        if not later:
            continue
        first = min(later, key=lambda r: r.at)
        gap = first.at - after
        if gap < throttled.retry_after - slack:
            problems.append(
                f"{throttled.method} {throttled.path}: 429 with Retry-After "
                f"{throttled.retry_after}, then {first.method} after {gap:.3f} s"
            )
    return problems
