"""Self-healing and failures: a child deleted or edited by hand is put back (and the
drift is journaled); a permanent error ends in Failed with the reason in status; a
retryable one is retried until Ready."""

from __future__ import annotations

from pathlib import Path

from engine.fsm import events as ev
from tests.integration.reconcile_support import (
    CONFIGMAPS,
    WIDGETS,
    Engine,
    ExternalService,
    eventually,
    running_engine,
)


async def _ready(engine: Engine, name: str) -> str:
    async def ready() -> bool:
        return await engine.phase(name) == "Ready"

    await eventually(ready, f"{name} is Ready")
    widget = await engine.widget(name)
    assert widget is not None
    return str(widget["metadata"]["uid"])


async def _triggers(engine: Engine, uid: str) -> list[str]:
    stream = next(s for s in await engine.journal.streams() if s.endswith(uid))
    records = await engine.journal.read_stream(stream)
    return [r.data["trigger"] for r in records if r.type == ev.TRANSITION_TAKEN]


async def test_child_deleted_by_hand_is_restored(tmp_path: Path) -> None:
    async with running_engine(tmp_path) as engine:
        await engine.api.create_widget("delta", size=1)
        uid = await _ready(engine, "delta")
        first = await engine.config("delta")
        assert first is not None
        assert await engine.api.delete(f"{CONFIGMAPS}/delta-config") == 200

        async def restored() -> bool:
            config = await engine.config("delta")
            return config is not None and config["metadata"]["uid"] != first["metadata"]["uid"]

        await eventually(restored, "the deleted ConfigMap is re-created")
        await _ready(engine, "delta")
        assert "drift_detected" in await _triggers(engine, uid)
        # the external step of this generation already succeeded; drift repair runs a
        # new round with its own keys
        assert all(n == 1 for n in engine.service.calls.values())


async def test_child_edited_by_hand_is_put_back(tmp_path: Path) -> None:
    async with running_engine(tmp_path) as engine:
        await engine.api.create_widget("epsilon", size=4, message="keep")
        uid = await _ready(engine, "epsilon")
        await engine.api.merge(f"{CONFIGMAPS}/epsilon-config", {"data": {"message": "tampered"}})

        async def put_back() -> bool:
            config = await engine.config("epsilon")
            return config is not None and config["data"]["message"] == "keep"

        await eventually(put_back, "the edited ConfigMap is put back")
        assert "drift_detected" in await _triggers(engine, uid)


async def test_child_edit_of_a_field_the_engine_does_not_set_is_not_drift(
    tmp_path: Path,
) -> None:
    async with running_engine(tmp_path) as engine:
        await engine.api.create_widget("zeta", size=4)
        uid = await _ready(engine, "zeta")
        await engine.api.merge(
            f"{CONFIGMAPS}/zeta-config", {"metadata": {"annotations": {"note": "by hand"}}}
        )
        # a later change to the owner proves the engine handled the child event first
        await engine.api.merge(f"{WIDGETS}/zeta", {"metadata": {"labels": {"seen": "yes"}}})

        async def labelled() -> bool:
            views = {v.name: v for v in engine.controller.snapshot()}
            return "zeta" in views and views["zeta"].last_event.startswith("Observed")

        await eventually(labelled, "the owner's label change is observed")
        await _ready(engine, "zeta")
        assert "drift_detected" not in await _triggers(engine, uid)


async def test_permanent_error_ends_in_failed_with_the_reason_in_status(tmp_path: Path) -> None:
    async with running_engine(tmp_path) as engine:
        await engine.api.create_widget("eta", size=13)

        async def failed() -> bool:
            return await engine.phase("eta") == "Failed"

        await eventually(failed, "eta is Failed")
        widget = await engine.widget("eta")
        assert widget is not None
        status = widget["status"]
        assert "size 13 is reserved" in status["reason"]
        failed_condition = next(c for c in status["conditions"] if c["type"] == "Failed")
        assert failed_condition["status"] == "True"
        assert "size 13 is reserved" in failed_condition["message"]
        # a spec change gets it out of Failed
        await engine.api.merge(f"{WIDGETS}/eta", {"spec": {"size": 2}})
        await _ready(engine, "eta")
        widget = await engine.widget("eta")
        assert widget is not None
        assert "reason" not in widget["status"]


async def test_retryable_failures_are_retried_until_ready(tmp_path: Path) -> None:
    service = ExternalService(failures_left=2)
    async with running_engine(tmp_path, service=service) as engine:
        await engine.api.create_widget("theta", size=1)
        uid = await _ready(engine, "theta")
        assert service.calls == {f"{uid}:1:register": 3}
        assert service.registered == {"theta": {"size": 1}}
        assert "effect_failed" in await _triggers(engine, uid)
