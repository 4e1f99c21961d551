"""Where `engine bench scale` finds the CPU of the PostgreSQL backends that serve one
part's replicas: their process ids by `application_name` (the part's schema name, set
in the replicas' journal URL), and their CPU from /proc (the server on this machine)."""

from __future__ import annotations

from collections.abc import Iterable

from engine.bench.kopf_process_tree import tree_cpu_seconds
from engine.journal.postgres_opening import connect, describe


async def backend_pids(url: str, application_name: str) -> list[int]:
    """The backends connected under `application_name` (none when the server is not
    visible in this machine's /proc: their CPU then counts as 0)."""
    admin = await connect(url, where=describe(url))
    try:
        cursor = await admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)
        )
        return [int(row[0]) for row in await cursor.fetchall()]
    finally:
        await admin.close()


def pids_cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU of the live processes among `pids`."""
    return sum(tree_cpu_seconds(pid) for pid in pids)
