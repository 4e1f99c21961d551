"""The replay half of `engine bench journal`: a realistic lifecycle journal replayed
through the real `engine replay` command in a child process (wall time and the child's
own peak RSS, from `wait4`), one resource through the stream index (the whole command,
interpreter start included: the median of a few runs), the whole-file check, and the
read + verify + fold rate a restart or a replay pays per record.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from engine.fsm.fold import INITIAL, apply
from engine.fsm.state import ResourceState
from engine.journal.chain_check import check_journal
from engine.journal.offline_reader import OfflineReader

RESOURCE_RUNS = 5
"""How many times `engine replay --resource` is run; the median is the figure."""
RESOURCE = "default/site-000123"
"""The resource `replay_resource_s` asks for (every lifecycle journal of more than 124
resources holds it)."""


@dataclass(frozen=True, slots=True)
class ReplayFigures:
    """Seconds and megabytes of one replay run over the same journal."""

    replay_fold_eps: float
    replay_json_s: float
    replay_table_s: float
    replay_peak_rss_mb: float
    replay_resource_s: float
    check_s: float


def replay_in_child(path: Path, fmt: str, *options: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of `engine replay PATH --format FMT [OPTIONS] >
    /dev/null`, the interpreter's start included.

    Errors: `RuntimeError` with the child's stderr when it fails.
    """
    command = [sys.executable, "-m", "engine", "replay", str(path), "--format", fmt, *options]
    with open(os.devnull, "wb") as sink:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=sink, stderr=subprocess.PIPE)
        assert child.stderr is not None
        errors = child.stderr.read()
        _pid, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"engine replay failed ({child.returncode}): {errors.decode()}")
    return elapsed, usage.ru_maxrss / 1024  # Linux reports kilobytes


def replay_resource(path: Path, resource: str = RESOURCE, *, runs: int = RESOURCE_RUNS) -> float:
    """Median wall seconds of the whole `engine replay PATH --resource RESOURCE` command
    (a table), over `runs` child processes."""
    return statistics.median(
        replay_in_child(path, "table", "--resource", resource)[0] for _ in range(runs)
    )


def check_seconds(path: Path) -> float:
    """Seconds of the whole-file check of `engine journal check`."""
    started = time.perf_counter()
    check_journal(path)
    return time.perf_counter() - started


def fold_rate(path: Path) -> float:
    """Records/s of reading every record (checksums verified, decoded) and folding each
    into its stream's state, in one pass."""
    states: dict[str, ResourceState] = {}
    started = time.perf_counter()
    count = 0
    with OfflineReader.open(path) as reader:
        for record in reader.read_all():
            states[record.stream] = apply(states.get(record.stream, INITIAL), record)
            count += 1
    return count / (time.perf_counter() - started)


def measure_replay(
    path: Path, *, resource: str = RESOURCE, resource_runs: int = RESOURCE_RUNS
) -> ReplayFigures:
    """Every replay figure over the lifecycle journal at `path`."""
    json_s, json_rss = replay_in_child(path, "json")
    table_s, table_rss = replay_in_child(path, "table")
    return ReplayFigures(
        replay_fold_eps=round(fold_rate(path)),
        replay_json_s=round(json_s, 2),
        replay_table_s=round(table_s, 2),
        replay_peak_rss_mb=round(max(json_rss, table_rss), 1),
        replay_resource_s=round(replay_resource(path, resource, runs=resource_runs), 3),
        check_s=round(check_seconds(path), 2),
    )
