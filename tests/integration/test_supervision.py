"""Supervision wired into the running engine, over real HTTP against the embedded API
server and the example registry: leader election and fencing, deadlocks between Sites,
stuck resources healed or failed, and the journaled release of a stuck finalizer."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from engine.failpoint import arm
from engine.fsm import events as ev
from engine.journal.sqlite import SqliteJournal
from tests.integration.reconcile_support import eventually
from tests.integration.supervision_support import (
    SITES,
    cycle_of,
    site_cluster,
    supervision_settings,
)


async def test_only_the_leader_acts_and_a_standby_takes_over_with_a_higher_term(
    tmp_path: Path,
) -> None:
    settings = supervision_settings(tmp_path, leader_election=True)
    async with site_cluster(tmp_path) as cluster:
        first = await cluster.start(settings)
        second = await cluster.start(settings)
        first_lead, second_lead = first.controller.leadership, second.controller.leadership
        assert first_lead is not None
        assert second_lead is not None

        async def one_leader() -> bool:
            return [first_lead.leading(), second_lead.leading()].count(True) == 1

        await eventually(one_leader, "exactly one replica leads")
        leader, standby = (first, second) if first_lead.leading() else (second, first)
        assert leader.controller.leadership is not None
        elector = leader.controller.leadership.elector
        assert elector is not None
        assert elector.term is not None
        old_term = elector.term
        for name in ("alpha", "beta"):
            await cluster.create_site(name)
        await cluster.all_ready("alpha", "beta")
        calls = await cluster.registry.calls()
        assert calls
        assert {c["term"] for c in calls} == {old_term}
        assert await standby.records(ev.EFFECT_STARTED) == []
        assert [r.data["term"] for r in await leader.records(ev.LEADER_ELECTED)] == [old_term]

        await leader.controller.stop()  # graceful: drain, then release the Lease
        await leader.task
        standby_lead = standby.controller.leadership
        assert standby_lead is not None
        await eventually(lambda: _true(standby_lead.leading()), "the standby leads", within=5)
        standby_elector = standby_lead.elector
        assert standby_elector is not None
        assert standby_elector.term is not None
        assert standby_elector.term > old_term
        await cluster.create_site("gamma")
        await cluster.all_ready("gamma")
        gamma = [c for c in await cluster.registry.calls() if c["name"] == "default.gamma"]
        assert gamma
        assert {c["term"] for c in gamma} == {standby_elector.term}
        started = await standby.records(ev.EFFECT_STARTED)
        assert started
        assert all(r.term == standby_elector.term for r in started)


async def _true(value: bool) -> bool:
    return value


async def test_a_depends_on_cycle_of_three_is_reported_as_a_deadlock_on_each_member(
    tmp_path: Path,
) -> None:
    async with site_cluster(tmp_path) as cluster:
        replica = await cluster.start(supervision_settings(tmp_path))
        await cluster.create_site("a", dependsOn=["b"])
        await cluster.create_site("b", dependsOn=["c"])
        await cluster.create_site("c", dependsOn=["a"])

        async def reported() -> bool:
            found = await replica.records(ev.DEADLOCK_DETECTED)
            return len({r.stream for r in found}) == 3

        await eventually(reported, "DeadlockDetected in the journal of a, b and c")
        found = await replica.records(ev.DEADLOCK_DETECTED)
        cycles = {tuple(cycle_of(r)) for r in found}
        assert len(cycles) == 1  # one cycle, journaled once in each member's stream
        [cycle] = cycles
        assert sorted(cycle) == ["default/a", "default/b", "default/c"]
        at = cycle.index("default/a")
        assert cycle[at + 1 :] + cycle[:at] == ("default/b", "default/c")  # wait order
        for name in ("a", "b", "c"):
            condition = await cluster.condition(name, "Deadlocked")
            assert condition is not None
            assert condition["status"] == "True"
            others = {"a", "b", "c"} - {name}
            assert all(f"default/{o}" in condition["message"] for o in others)
            assert await cluster.phase(name) == "Provisioning"  # report and hold
        events = await cluster.events("DeadlockDetected")
        assert {e["involvedObject"]["name"] for e in events} == {"a", "b", "c"}
        assert all(e["type"] == "Warning" for e in events)
        assert await cluster.registry.calls() == []  # nobody registered


async def test_a_hung_registry_call_is_healed_and_the_site_gets_ready_once_it_answers(
    tmp_path: Path,
) -> None:
    settings = supervision_settings(
        tmp_path,
        effect_timeout_seconds=0.3,
        stuck_deadlines={"Provisioning": 0.8},
        max_heals_without_progress=10,
    )
    async with site_cluster(tmp_path) as cluster:
        await cluster.registry.set_faults(latency_seconds=5.0)
        replica = await cluster.start(settings)
        await cluster.create_site("slow")

        async def healed() -> bool:
            return bool(await replica.records(ev.HEALING_APPLIED))

        await eventually(healed, "a HealingApplied for the slow Site", within=10)
        [stuck, *_] = await replica.records(ev.STUCK_DETECTED)
        assert stuck.data["state"] == "Provisioning"
        assert "Timeout" in stuck.data["reason"]  # names the last error
        condition = await cluster.condition("slow", "Stuck")
        assert condition is not None
        assert condition["reason"] == "ProvisioningDeadlineExceeded"
        assert await cluster.events("StuckDetected")
        await cluster.registry.set_faults(latency_seconds=0.0)
        await cluster.all_ready("slow")
        assert await cluster.condition("slow", "Stuck") is None  # Ready clears it
        assert (await cluster.registry.applied()).values()
        assert all(count == 1 for count in (await cluster.registry.applied()).values())


async def test_an_effect_that_hangs_forever_is_failed_after_the_allowed_heals(
    tmp_path: Path,
) -> None:
    settings = supervision_settings(
        tmp_path,
        reconcile_timeout_seconds=60.0,
        stuck_deadlines={"Provisioning": 0.5},
        max_heals_without_progress=2,
    )
    async with site_cluster(tmp_path) as cluster:
        with arm(**{"effect.before_send": "hang"}):  # the engine's tasks inherit it
            replica = await cluster.start(settings)
        await cluster.create_site("hung")

        async def failed() -> bool:
            return await cluster.phase("hung") == "Failed"

        await eventually(failed, "the hung Site Failed", within=15)
        heals = await replica.records(ev.HEALING_APPLIED)
        assert [h.data["action"] for h in heals] == ["redrive", "redrive", "fail"]
        site = await cluster.site("hung") or {}
        reason = (site.get("status") or {}).get("reason") or ""
        assert "Stuck" in reason
        assert "2 heals without progress" in reason
        assert await cluster.registry.calls() == []


async def test_release_finalizer_removes_the_finalizer_and_journals_it(tmp_path: Path) -> None:
    async with site_cluster(tmp_path) as cluster:
        replica = await cluster.start(supervision_settings(tmp_path))
        await cluster.create_site("stuck")
        await cluster.all_ready("stuck")
        await replica.controller.stop()
        await replica.task
        journal_path = tmp_path / "replica-1" / "journal.db"
        await replica.journal.close()
        status, _ = await cluster.api.request("DELETE", f"{SITES}/stuck")
        assert status == 200
        site = await cluster.site("stuck") or {}
        assert site["metadata"]["deletionTimestamp"]  # held by the engine's finalizer

        args = ["release-finalizer", "default/stuck", "--kubeconfig", str(cluster.kubeconfig)]
        code, out, err = await _engine(*args, "--journal", str(journal_path))
        assert code == 0, err
        assert "released" in out
        assert await cluster.site("stuck") is None
        code, _, err = await _engine(*args, "--journal", str(journal_path))
        assert code == 1
        assert "does not exist" in err
        journal = await SqliteJournal.open(journal_path)
        try:
            streams = [s for s in await journal.streams() if "/default/stuck#" in s]
            [stream] = streams
            records = await journal.read_stream(stream)
        finally:
            await journal.close()
        assert records[-1].type == ev.HEALING_APPLIED
        assert records[-1].data["action"] == "release-finalizer"


async def _engine(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "engine",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
