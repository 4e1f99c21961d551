"""Three sharded replicas (each its own `engine run` process) on one PostgreSQL journal
and the embedded API server, under a create/update/delete workload of Chores whose
provision and finalize each call the shard target under a (shard, term) fence:

- kill -9 one replica: its shards move to the others (acquired again under higher
  terms) and everything converges;
- SIGSTOP a shard owner past its lease, SIGCONT it: its shards were taken over, and every
  write it then tried was refused by term, at the journal and at the target;
- add a replica and remove one mid-run: handoffs journaled, nothing lost;
- across all of it: exactly one recorded success per effect key in the shared journal,
  and exactly one applied call per key at the target, each with a journaled success.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path

import pytest

from engine.bench.shard_fleet import Fleet, FleetTimings, running_fleet
from engine.journal.batch import Fence
from engine.journal.errors import FencedOut
from engine.journal.location import open_journal
from engine.journal.record import NewEvent
from engine.runtime.sharding.coordinator import SHARD_ACQUIRED, SHARD_RELEASED
from engine.runtime.sharding.members import member_lease_name
from tests.support.postgres import Schemas, postgres_schemas, postgres_server

__all__ = ["postgres_schemas", "postgres_server"]
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

TIMINGS = FleetTimings(
    shards=6, lease_duration=2.0, renew_deadline=1.5, retry_period=0.4, workers=8
)
SETTLE = 45.0


async def shard_records(fleet: Fleet) -> list[tuple[str, str, str, int]]:
    """(type, shard, holder, term) of every ShardAcquired / ShardReleased, in order."""
    journal = await open_journal(fleet.journal_url, readonly=True)
    found = []
    try:
        async for record in journal.read_all():
            if record.type in (SHARD_ACQUIRED, SHARD_RELEASED):
                data = record.data
                found.append(
                    (record.type, str(data["shard"]), str(data["holder"]), int(data["term"]))
                )
    finally:
        await journal.close()
    return found


def holders(records: list[tuple[str, str, str, int]]) -> dict[str, tuple[str, int]]:
    """shard → (holder, term) of its last acquisition."""
    held: dict[str, tuple[str, int]] = {}
    for kind, shard, holder, term in records:
        if kind == SHARD_ACQUIRED:
            held[shard] = (holder, term)
    return held


async def settled(fleet: Fleet, members: int) -> dict[str, tuple[str, int]]:
    """Wait until every shard's last record is an acquisition and `members` replicas hold
    them (each holds its share: 6 shards over 3 members are 2 each)."""
    deadline = time.monotonic() + SETTLE
    while True:
        records = await shard_records(fleet)
        last = {shard: (kind, holder, term) for kind, shard, holder, term in records}
        held = {s: (h, t) for s, (kind, h, t) in last.items() if kind == SHARD_ACQUIRED}
        if len(held) == TIMINGS.shards and len({h for h, _ in held.values()}) == members:
            return held
        assert time.monotonic() < deadline, f"shards not settled over {members}: {last}"
        await asyncio.sleep(TIMINGS.retry_period)


async def taken_over(fleet: Fleet, terms: dict[str, int]) -> dict[str, tuple[str, int]]:
    """Wait until each shard of `terms` was acquired again under a higher term."""
    deadline = time.monotonic() + SETTLE
    while True:
        held = holders(await shard_records(fleet))
        if all(held[shard][1] > term for shard, term in terms.items()):
            return held
        assert time.monotonic() < deadline, f"not taken over: {terms} {held}"
        await asyncio.sleep(TIMINGS.retry_period)


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def logged(path: Path, text: str) -> None:
    """Wait until `path` holds `text` (a replica's log line)."""
    deadline = time.monotonic() + SETTLE
    while text not in await asyncio.to_thread(_text, path):
        assert time.monotonic() < deadline, f"{path.name} never logged {text!r}"
        await asyncio.sleep(0.2)


async def identity_of(fleet: Fleet, name: str) -> str:
    """The member identity replica `name` journaled its acquisitions under."""
    deadline = time.monotonic() + SETTLE
    while True:
        log = fleet.replicas[name].log.parent / name / "engine.log"
        text = log.read_text() if log.exists() else ""
        for line in text.splitlines():
            if "leading default/engine-member-" in line:
                member = line.split("engine-member-")[1].split(",")[0]
                for _, _, holder, _ in await shard_records(fleet):
                    if member_lease_name("engine", holder).endswith(member):
                        return holder
        assert time.monotonic() < deadline, f"replica {name} never held a shard"
        await asyncio.sleep(0.2)


async def once_per_key(fleet: Fleet) -> list[str]:
    """Exactly one recorded success per effect key in the shared journal, and exactly
    one applied call per key at the target, each with its journaled success; returns
    the applied keys."""
    successes = await fleet.journal_successes()
    assert successes
    assert max(successes.values()) == 1, successes.most_common(3)
    applied = [c["key"] for c in fleet.target.state.calls if c["outcome"] == "applied"]
    assert len(applied) == len(set(applied)), "a key applied twice at the target"
    calls = {key for key in successes if key.endswith((":call", ":undo"))}
    assert set(applied) == calls, set(applied) ^ calls
    return applied


async def test_replicas_share_the_work_and_survive_kill_pause_and_rescaling(
    postgres_schemas: Schemas, tmp_path: Path
) -> None:
    async with running_fleet(tmp_path, postgres_schemas.new(), TIMINGS, latency=0.05) as fleet:
        replicas = [await fleet.start(name) for name in ("a", "b", "c")]
        await asyncio.gather(*(r.wait_synced() for r in replicas))
        live = {f"w-{i:02d}" for i in range(12)}
        await fleet.create(sorted(live))
        await fleet.wait_converged(live, within=SETTLE)
        before = await settled(fleet, 3)
        a, b = await identity_of(fleet, "a"), await identity_of(fleet, "b")
        assert {holder for holder, _ in before.values()} == {a, b, await identity_of(fleet, "c")}

        # kill -9 while updates, deletes and creates are in flight
        for index, name in enumerate(sorted(live)[:4]):
            await fleet.update(name, 2 + index)
        for name in sorted(live)[4:6]:
            await fleet.delete(name)
            live.discard(name)
        await fleet.replicas["a"].kill()
        fresh = {f"x-{i:02d}" for i in range(4)}
        await fleet.create(sorted(fresh))
        live |= fresh
        await fleet.wait_converged(live, within=SETTLE)
        after_kill = await settled(fleet, 2)
        moved = [s for s, (holder, _) in before.items() if holder == a]
        assert moved, before
        assert all(after_kill[s][0] != a for s in moved), after_kill
        assert all(after_kill[s][1] > before[s][1] for s in moved), "taken over under higher terms"

        # SIGSTOP b past its lease, with work arriving for its shards, until the others
        # have taken its shards over; then SIGCONT
        paused = fleet.replicas["b"]
        b_terms = {s: t for s, (holder, t) in after_kill.items() if holder == b}
        assert b_terms, after_kill
        paused.pause()
        more = {f"y-{i:02d}" for i in range(4)}
        await fleet.create(sorted(more))
        live |= more
        await asyncio.sleep(TIMINGS.lease_duration + 1.0)
        await taken_over(fleet, b_terms)
        resumed_at = time.time()
        paused.resume()
        await fleet.wait_converged(live, within=SETTLE)
        await logged(paused.log.parent / "b" / "engine.log", "lost the Lease")
        after_pause = holders(await shard_records(fleet))
        assert all(after_pause[s][0] != b or after_pause[s][1] > t for s, t in b_terms.items())
        late = [c for c in fleet.target.state.calls
                if c["at"] >= resumed_at and b_terms.get(c["shard"]) == c["term"]]  # fmt: skip
        assert all(c["outcome"] == "stale" for c in late), late
        moved_from_b = [s for s, t in b_terms.items() if after_pause[s][1] > t]
        assert moved_from_b, (b_terms, after_pause)
        journal = await open_journal(fleet.journal_url)
        try:  # what b's next append for a shard it lost meets at the database
            shard = moved_from_b[0]
            with pytest.raises(FencedOut):
                await journal.append(
                    f"engine/shards/{shard}",
                    [NewEvent(type="Probe")],
                    fence=Fence(shard, b_terms[shard]),
                )
        finally:
            await journal.close()

        # add a replica, remove one, mid-run
        joining = await fleet.start("d")
        await joining.wait_synced()
        for name in sorted(more)[:2]:
            await fleet.update(name, 9)
        assert await fleet.replicas["c"].stop() == 0
        last = {f"z-{i:02d}" for i in range(4)}
        await fleet.create(sorted(last))
        live |= last
        await fleet.wait_converged(live, within=SETTLE)
        await settled(fleet, 2)  # b (back as a member) and d
        records = await shard_records(fleet)
        assert any(kind == SHARD_RELEASED for kind, *_ in records), "c journaled its releases"
        d = await identity_of(fleet, "d")
        assert any(holder == d for _, _, holder, _ in records), "d took shards"

        # what an operator sees: the replica's /metrics and `engine shards`
        health = re.search(r"health: (http://127\.0\.0\.1:\d+)/healthz", joining.output())
        assert health is not None, joining.output()
        async with fleet.session.get(f"{health.group(1)}/metrics") as reply:
            metrics = await reply.text()
        owned = re.search(r"^engine_shards_owned (\S+)$", metrics, re.MULTILINE)
        assert owned is not None, metrics[-2000:]
        assert float(owned.group(1)) >= 1
        assert re.search(r'^engine_shard_handoffs_total\{.*direction="acquired"', metrics, re.M)
        assert "engine_shard_keys{" in metrics
        shown = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "engine", "shards", "--kubeconfig", str(fleet.kubeconfig),
            "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await shown.communicate()
        assert shown.returncode == 0, err
        report = json.loads(out)
        assert len(report["shards"]) == TIMINGS.shards
        assert d in {m["identity"] for m in report["members"] if m["live"]}
        assert all(row["holder"] for row in report["shards"]), report

        await once_per_key(fleet)
