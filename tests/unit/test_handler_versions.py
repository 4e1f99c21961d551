"""Handler code versions and `ctx.patched`: a journal written by handler version A and
resumed by version B (which adds a step behind `ctx.patched`) verifies under B; the run
in flight across the upgrade keeps the old path, a resource created under B takes the
new one; every record names the version that wrote it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from engine.cli.main import cli
from engine.clock import FakeClock
from engine.effects import RetryableError
from engine.fsm import events as ev
from engine.journal.record import Record
from engine.journal.sqlite import SqliteJournal
from engine.replay.recording import is_external
from engine.replay.replayed_run import replay_through_loop
from engine.runtime.reconcile.code_version import CODE_VERSION_FIELD, handlers_source_version
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.memory_loop import MemoryLoop
from engine.runtime.reconcile.operator import Operator
from engine.runtime.reconcile.patches import PATCH_MARKER
from tests.support.gadget_operator import CONFIG_MAPS, GADGET

CHANGE = "audit-before-register"


def _operator(version: str, calls: list[str], *, busy: set[str]) -> Operator:
    """Version "A": steps prepare, register. Version "B": prepare, then `audit` when
    `ctx.patched(CHANGE)`, then register. `register` fails retryably once per name in
    `busy` (the resource is left in flight, its retry due)."""

    async def step(ctx: Context, name: str) -> None:
        async def call(key: str) -> Any:
            calls.append(key)
            if name == "register" and ctx.name in busy:
                busy.discard(ctx.name)
                raise RetryableError("the registry is busy", delay=1.0)
            return {"step": name}

        await ctx.effect(name, call)

    async def provision_a(ctx: Context) -> None:
        await step(ctx, "prepare")
        await step(ctx, "register")

    async def provision_b(ctx: Context) -> None:
        await step(ctx, "prepare")
        if await ctx.patched(CHANGE):
            await step(ctx, "audit")
        await step(ctx, "register")

    return Operator(
        resource=GADGET,
        provision=provision_a if version == "A" else provision_b,
        children=(CONFIG_MAPS,),
        code_version=version,
    )


def _steps(records: list[Record]) -> list[str]:
    return [
        str(r.data["name"])
        for r in records
        if r.type == ev.EFFECT_SUCCEEDED and r.data["name"] != "provision"
    ]


async def test_a_run_in_flight_across_an_upgrade_keeps_the_old_path_and_verifies(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    journal = await SqliteJournal.open(tmp_path / "journal.db", clock=clock)
    try:
        calls: list[str] = []
        old = MemoryLoop(_operator("A", calls, busy={"old"}), journal=journal, clock=clock)
        key = await old.create("old", {"size": "1Gi"})
        await old.reconcile(key)  # register fails: the provision's retry is due
        assert (await old.state(key)).state == "Provisioning"

        new_loop = old.restart(_operator("B", calls, busy=set()))
        await new_loop.relist()
        await new_loop.settle(key)
        fresh = await new_loop.create("new", {"size": "2Gi"})
        await new_loop.settle(fresh)

        in_flight, created = await new_loop.records(key), await new_loop.records(fresh)
        assert (await new_loop.state(key)).state == "Ready"
        assert (await new_loop.state(fresh)).state == "Ready"
        assert _steps(in_flight) == ["prepare", "register"]  # the old path
        assert _steps(created) == ["prepare", "audit", "register"]  # the new path
        markers = {
            r.stream: r.data["patched"] for r in in_flight + created if r.type == PATCH_MARKER
        }
        assert markers == {new_loop.stream(key): False, new_loop.stream(fresh): True}
        assert [c.rsplit(":", 1)[1] for c in calls] == [
            "prepare",
            "register",
            "register",
            "prepare",
            "audit",
            "register",
        ]

        versions = [r.data.get(CODE_VERSION_FIELD) for r in in_flight if not is_external(r)]
        first_b = versions.index("B")
        assert set(versions[:first_b]) == {"A"}
        assert set(versions[first_b:]) == {"B"}

        records = [r async for r in journal.read_all()]
        report = await replay_through_loop(records, _operator("B", [], busy=set()))
        assert report.divergence is None, report.divergence
        assert report.compared == sum(1 for r in records if not is_external(r))
        assert dict(report.versions).keys() == {"A", "B"}
        assert report.code_version == "B"

        # version A's code never asks: B's first record (the marker) diverges, named as B's
        under_a = await replay_through_loop(records, _operator("A", [], busy=set()))
        assert under_a.divergence is not None
        assert under_a.divergence.stream == new_loop.stream(key)
        assert PATCH_MARKER in under_a.divergence.message
        assert under_a.diverging_version == "B"
    finally:
        await journal.close()

    listed = CliRunner().invoke(
        cli, ["journal", "versions", str(tmp_path / "journal.db"), "--json"]
    )
    assert listed.exit_code == 0, listed.output
    report = json.loads(listed.output)
    assert report["patches"] == {
        CHANGE: {"new": ["default/new"], "old": ["default/old"], "old_in_flight": []}
    }
    assert report["versions"]["B"]["resources"] == ["default/new", "default/old"]
    assert "A" not in report["versions"]  # no resource runs version A's work any more
    table = CliRunner().invoke(cli, ["journal", "versions", str(tmp_path / "journal.db")])
    assert f"{CHANGE}: no old-path run is in flight" in table.output


async def test_journal_versions_shows_the_run_still_in_flight_on_the_old_version(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    journal = await SqliteJournal.open(tmp_path / "journal.db", clock=clock)
    try:
        old = MemoryLoop(_operator("A", [], busy={"old"}), journal=journal, clock=clock)
        await old.reconcile(await old.create("old", {"size": "1Gi"}))
    finally:
        await journal.close()
    listed = CliRunner().invoke(
        cli, ["journal", "versions", str(tmp_path / "journal.db"), "--json"]
    )
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)["versions"] == {
        "A": {"resources": ["default/old"], "in_flight": ["default/old"]}
    }
    missing = CliRunner().invoke(cli, ["journal", "versions", str(tmp_path / "none.db")])
    assert missing.exit_code == 2
    assert len(missing.output.strip().splitlines()) == 1


def test_the_default_code_version_is_a_stable_hash_of_the_handlers_source() -> None:
    a = _operator("", [], busy=set())
    assert a.handler_version == handlers_source_version(a.provision, a.finalize)
    assert a.handler_version == _operator("", [], busy=set()).handler_version
    assert len(a.handler_version) == 12
    b = Operator(resource=GADGET, provision=_steps_provision)  # another handler: another hash
    assert b.handler_version != a.handler_version
    assert _operator("7", [], busy=set()).handler_version == "7"


async def _steps_provision(ctx: Context) -> None:
    await ctx.effect("other", _nothing)


async def _nothing(key: str) -> None:
    return None
