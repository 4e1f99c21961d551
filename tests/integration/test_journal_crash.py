"""kill -9 at random moments: every acknowledged append survives and the chain verifies."""

from __future__ import annotations

import asyncio
import os
import random
import select
import signal
import time
from pathlib import Path

from engine.journal import NewEvent
from engine.journal.sqlite import SqliteJournal

KILLS = 50


async def append_forever(path: Path, report: int) -> None:
    journal = await SqliteJournal.open(path)
    n = 0
    while True:
        n += 1
        event = NewEvent("Observed", {"n": n, "pid": os.getpid()})
        [position] = await journal.append(f"s{n % 4}", [event])
        os.write(report, f"{position} {os.getpid()} {n}\n".encode())


def run_child(path: Path, report: int) -> None:
    try:
        asyncio.run(append_forever(path, report))
    finally:
        os._exit(1)


def read_acknowledged(fd: int) -> list[tuple[int, int, int]]:
    chunks = []
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    # each line is one os.write under PIPE_BUF, so a kill never tears one
    return [
        (int(position), int(pid), int(n))
        for position, pid, n in (line.split() for line in b"".join(chunks).decode().splitlines())
    ]


async def verify_after_kill(path: Path, acked: list[tuple[int, int, int]]) -> int:
    # Reopen as the restarted engine does (a kill may land before the new file got its
    # schema: the writer initialises it then), then check the file as `engine journal check`.
    writer = await SqliteJournal.open(path)
    await writer.close()
    journal = await SqliteJournal.open(path, readonly=True)
    try:
        count = await journal.verify()
        by_position = {r.position: r async for r in journal.read_all()}
    finally:
        await journal.close()
    for position, pid, n in acked:
        record = by_position[position]
        assert record.data == {"n": n, "pid": pid}
    return count


def test_acknowledged_appends_survive_sigkill_at_random_moments(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    rng = random.Random(20260101)
    total_acked = 0
    count = 0
    for _ in range(KILLS):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            run_child(path, write_end)
        os.close(write_end)
        time.sleep(rng.uniform(0.01, 0.15))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        acked = read_acknowledged(read_end)
        os.close(read_end)
        count = asyncio.run(verify_after_kill(path, acked))
        total_acked += len(acked)
        if acked:
            assert count >= max(position for position, _pid, _n in acked)
    assert total_acked > 0  # the children did get to append
    assert count >= total_acked
