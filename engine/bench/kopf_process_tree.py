"""CPU time and peak memory of a process and its descendants, from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile
        return None
    return text.rsplit(")", 1)[1].split()  # fields from the third on (state, ppid, …)


def descendants(pid: int) -> list[int]:
    """The live descendants of `pid` (children, their children, …)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))) is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    pending = [pid]
    while pending:
        children = parents.get(pending.pop(), [])
        found.extend(children)
        pending.extend(children)
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid`, of its live descendants, and of the children each of
    them has already reaped."""
    ticks = 0
    for member in (pid, *descendants(pid)):
        fields = _stat_fields(member)
        if fields is not None:  # utime, stime, cutime, cstime (fields 14 to 17)
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / _TICKS


def tree_peak_rss_kib(pid: int) -> int:
    """The largest peak resident set (VmHWM, KiB) among `pid` and its live descendants."""
    peaks = [0]
    for member in (pid, *descendants(pid)):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]))
    return max(peaks)
