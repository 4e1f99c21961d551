"""The engine against the embedded API server over real HTTP: create → Ready with the
child and the external step, spec update, delete with cleanup and GC."""

from __future__ import annotations

from pathlib import Path

from engine.fsm import events as ev
from tests.integration.reconcile_support import (
    CONFIGMAPS,
    WIDGETS,
    eventually,
    running_engine,
)


async def test_created_resource_goes_ready_with_its_child_and_external_step(
    tmp_path: Path,
) -> None:
    async with running_engine(tmp_path) as engine:
        await engine.api.create_widget("alpha", size=2)

        async def ready() -> bool:
            return await engine.phase("alpha") == "Ready"

        await eventually(ready, "alpha is Ready")
        widget = await engine.widget("alpha")
        assert widget is not None
        status = widget["status"]
        assert status["observedGeneration"] == widget["metadata"]["generation"]
        conditions = {c["type"]: c["status"] for c in status["conditions"]}
        assert conditions == {"Ready": "True", "Provisioning": "False", "Failed": "False"}
        assert "test.engine.dev/finalizer" in widget["metadata"]["finalizers"]
        config = await engine.config("alpha")
        assert config is not None
        assert config["data"] == {"size": "2", "message": "hello"}
        owner = config["metadata"]["ownerReferences"][0]
        assert owner["uid"] == widget["metadata"]["uid"]
        assert owner["controller"] is True
        assert owner["blockOwnerDeletion"] is True
        assert engine.service.registered == {"alpha": {"size": 2}}
        assert list(engine.service.calls.values()) == [1]
        views = {v.name: v for v in engine.controller.snapshot()}
        assert views["alpha"].state == "Ready"


async def test_spec_update_reprovisions_and_updates_the_child(tmp_path: Path) -> None:
    async with running_engine(tmp_path) as engine:
        await engine.api.create_widget("beta", size=1)

        async def ready_at(generation: int) -> bool:
            widget = await engine.widget("beta")
            status = (widget or {}).get("status") or {}
            return status.get("phase") == "Ready" and status.get("observedGeneration") == generation

        await eventually(lambda: ready_at(1), "beta Ready at generation 1")
        await engine.api.merge(f"{WIDGETS}/beta", {"spec": {"size": 5, "message": "bye"}})
        await eventually(lambda: ready_at(2), "beta Ready at generation 2")
        config = await engine.config("beta")
        assert config is not None
        assert config["data"] == {"size": "5", "message": "bye"}
        assert engine.service.registered == {"beta": {"size": 5}}
        uid = (await engine.widget("beta") or {})["metadata"]["uid"]
        assert sorted(engine.service.calls) == [f"{uid}:1:register", f"{uid}:2:register"]
        streams = [s for s in await engine.journal.streams() if s.endswith(uid)]
        records = await engine.journal.read_stream(streams[0])
        moves = [(r.data["from"], r.data["to"]) for r in records if r.type == ev.TRANSITION_TAKEN]
        assert moves == [
            ("Pending", "Provisioning"),
            ("Provisioning", "Ready"),
            ("Ready", "Provisioning"),
            ("Provisioning", "Ready"),
        ]


async def test_delete_finalizes_removes_the_finalizer_and_the_child_is_collected(
    tmp_path: Path,
) -> None:
    async with running_engine(tmp_path) as engine:
        await engine.api.create_widget("gamma", size=3)

        async def ready() -> bool:
            return await engine.phase("gamma") == "Ready"

        await eventually(ready, "gamma is Ready")
        uid = (await engine.widget("gamma") or {})["metadata"]["uid"]
        assert await engine.api.delete(f"{WIDGETS}/gamma") == 200

        async def gone() -> bool:
            return await engine.widget("gamma") is None

        await eventually(gone, "gamma is deleted")
        assert engine.service.registered == {}
        unregisters = {k: n for k, n in engine.service.calls.items() if k.endswith(":unregister")}
        assert list(unregisters.values()) == [1]
        assert next(iter(unregisters)).startswith(f"{uid}:")

        async def collected() -> bool:
            return await engine.api.get(f"{CONFIGMAPS}/gamma-config") is None

        await eventually(collected, "the child ConfigMap is collected")
        streams = [s for s in await engine.journal.streams() if s.endswith(uid)]
        records = await engine.journal.read_stream(streams[0])
        moves = [r.data["to"] for r in records if r.type == ev.TRANSITION_TAKEN]
        assert moves[-2:] == ["Finalizing", "Deleted"]
