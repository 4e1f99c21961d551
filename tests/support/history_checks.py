"""The history checks every fault scenario ends with, in one call: after the faults stop
and the workload converged, on what the scenario left behind (the engine's journal and
state dir, the registry's call log, the API server's objects).

- overlapping reconciles of a key (R6): in each stream, every effect outcome ends the
  attempt started last and still open (attempts nest: the handler run, its steps);
  two turns of one key at once would end one out of turn;
- one recorded success per idempotency key (R3), and none the registry never accepted,
  and no key the registry applied without a recorded success, and no key reused for
  another request, and nothing accepted under a stale term (R10);
- convergence (R12), by `SiteWorkload.wait_converged`;
- `engine replay JOURNAL --verify` (the real command) finds no divergence (R11);
- `engine journal check JOURNAL` passes (R2);
- the secret canary (R16): no canary value in any file of the state dir (journal, its
  `-wal` and `-shm`), nor in the engine's output.

`check_history` returns every violation found, prefixed by the check that found it, so a
test asserts one empty list and a failure shows all of them at once.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.bench.soak import interleaved_outcomes, read_rows
from tests.support.fault_harness import ROOT
from tests.support.history import (
    JournalEffects,
    RegistryLog,
    accepted_under_stale_term,
    applied_more_than_once,
    applied_without_success,
    journal_check,
    key_reused_for_another_request,
    succeeded_more_than_once,
    successes_without_target_call,
)
from tests.support.workload import SiteWorkload

REPLAY_BACKOFF = ("--backoff-cap", "1")
"""The fault tests' engines run with ENGINE_BACKOFF_CAP_SECONDS=1; replay re-checks the
recorded retry delays under the same policy."""


@dataclass(frozen=True)
class HistoryFigures:
    """What the checks counted, for a test's or the soak's report."""

    violations: tuple[str, ...]
    effects_succeeded: int
    registry_calls: int
    records: int


async def interleaved_effects(journal: Path) -> list[str]:
    """(R6) Effect outcomes out of turn in their stream (`interleaved_outcomes`)."""
    return interleaved_outcomes(await read_rows(journal))


async def replay_verify(journal: Path, *, within: float = 60) -> tuple[int, str]:
    """(R11) `engine replay JOURNAL --verify`, the real command in its own process (a
    replay that never ends is killed after `within` seconds: exit code None -> -1)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine", "replay", str(journal), "--verify", *REPLAY_BACKOFF,
        cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1, f"did not finish within {within:g} s"
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace").strip()


async def checked_journal(journal: Path) -> tuple[int, str]:
    """(R2) `engine journal check JOURNAL` (the real command, in a thread)."""
    return await journal_check(journal)


def canary_hits(canaries: Iterable[str], places: Sequence[Path]) -> list[str]:
    """(R16) Every (canary, file) where a canary's bytes occur; directories are searched
    file by file (the journal, its `-wal` and `-shm`, whatever else the engine wrote)."""
    files: list[Path] = []
    for place in places:
        if place.is_dir():
            files += sorted(p for p in place.rglob("*") if p.is_file())
        elif place.exists():
            files.append(place)
    needles = [c.encode() for c in canaries]
    hits = []
    for path in files:
        data = path.read_bytes()
        hits += [f"{n.decode()} in {path}" for n in needles if n in data]
    return hits


async def check_history(
    *,
    journal: Path,
    state_dir: Path,
    outputs: Sequence[Path],
    registry_url: str,
    workload: SiteWorkload | None = None,
    converge_within: float = 30,
    canaries: Iterable[str] = (),
    steps: Sequence[str] = ("register", "unregister"),
    replay: bool = True,
) -> HistoryFigures:
    """Run every check; the engine must be stopped (or killed) before, so the journal is
    complete. `outputs` are the engine's log files, searched for the canaries too.
    `replay=False` leaves out `replay --verify` (for a journal shape it is known not to
    finish on: docs/reliability.md lists the defect)."""
    problems: list[str] = []
    if workload is not None:
        try:
            await workload.wait_converged(within=converge_within)
        except AssertionError as unconverged:
            problems.append(f"convergence: {unconverged}")
    log = await RegistryLog.fetch(registry_url)
    effects = await JournalEffects.read(journal)
    problems += [f"overlap: {p}" for p in await interleaved_effects(journal)]
    for name, found in (
        ("applied twice", applied_more_than_once(log)),
        ("key reused", key_reused_for_another_request(log)),
        ("stale term", accepted_under_stale_term(log)),
        ("succeeded twice", succeeded_more_than_once([effects])),
        (
            "success unseen by the target",
            successes_without_target_call([effects], log, steps=steps),
        ),
        ("applied, no success", applied_without_success([effects], log)),
    ):
        problems += [f"{name}: {p}" for p in found]
    code, out = await checked_journal(journal)
    if code != 0:
        problems.append(f"journal check: exit {code}: {out}")
    code, out = await replay_verify(journal) if replay else (0, "")
    if code != 0:
        problems.append(f"replay --verify: exit {code}: {out[-2000:]}")
    problems += [f"canary: {hit}" for hit in canary_hits(canaries, [state_dir, *outputs])]
    records = sum(effects.started.values()) + sum(effects.succeeded.values())
    return HistoryFigures(
        violations=tuple(problems),
        effects_succeeded=len(effects.succeeded),
        registry_calls=len(log.calls),
        records=records,
    )
