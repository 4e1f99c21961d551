"""A writer process for the multi-process PostgreSQL journal test.

`python -m tests.e2e.journal_writer URL NAME COUNT`: opens the journal, prints "ready",
waits for a line on stdin (so the processes overlap), appends COUNT single-event appends
from 8 tasks (to its own streams and one shared stream), and prints their positions as
one JSON list.
"""

from __future__ import annotations

import asyncio
import json
import sys

from engine.journal import NewEvent
from engine.journal.postgres import PostgresJournal

TASKS = 8


async def main(url: str, name: str, count: int) -> None:
    journal = await PostgresJournal.open(url)
    positions: list[int] = []

    async def writer(task: int) -> None:
        for n in range(count // TASKS):
            stream = "shared" if n % 2 else f"{name}-{task}"
            event = NewEvent(
                type="Observed", data={"writer": name, "n": n}, idempotency_key=f"{name}:{task}:{n}"
            )
            positions.extend(await journal.append(stream, [event]))

    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await asyncio.gather(*(writer(task) for task in range(TASKS)))
    finally:
        await journal.close()
    print(json.dumps(positions))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
