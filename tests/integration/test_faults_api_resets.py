"""B.2 A5a, A5b and A5c: the running engine, through the fault proxy, against the embedded
API server, with one write of each Widget's first provision broken by a connection
reset: before the server saw the finalizer patch, in the middle of the child apply's
answer (half its JSON), or after the server applied the child apply or the finalizer
patch (the engine never hears it did). Each ambiguous write is settled against what
the server holds before anything is written again: no duplicate child (its name is
derived), no duplicate or lost finalizer, one registration per key, every Widget
Ready."""

from __future__ import annotations

from pathlib import Path

from tests.integration.reconcile_support import (
    CONFIGMAPS,
    WIDGETS,
    ExternalService,
    eventually,
    running_engine,
    widget_operator,
)
from tests.support.fault_proxy import (
    RESET,
    RESET_AFTER_APPLY,
    RESET_MID_BODY,
    FaultSettings,
)

FINALIZER = widget_operator(ExternalService()).finalizer_name

FAULTS = {
    "before": (f"{WIDGETS}/before", RESET),  # A5a: the finalizer patch, never sent on
    "midbody": (f"{CONFIGMAPS}/midbody-config", RESET_MID_BODY),  # A5b
    "applied": (f"{CONFIGMAPS}/applied-config", RESET_AFTER_APPLY),  # A5c: the child
    "finalized": (f"{WIDGETS}/finalized", RESET_AFTER_APPLY),  # A5c: the finalizer
}


async def test_a_write_reset_before_during_or_after_its_answer_is_settled_without_duplicates(
    tmp_path: Path,
) -> None:
    async with running_engine(tmp_path, fault_proxy=FaultSettings()) as engine:
        proxy = engine.proxy
        assert proxy is not None
        proxy.aim(
            *(
                FaultSettings(
                    rate=1.0, kinds=(kind,), methods=("PATCH",), path_contains=path, limit=1
                )
                for path, kind in FAULTS.values()
            )
        )
        for name in FAULTS:
            await engine.api.create_widget(name, size=2)

        async def ready() -> bool:
            return all([await engine.phase(name) == "Ready" for name in FAULTS])

        await eventually(ready, "every Widget Ready after its reset")

        assert sorted(f.kind for f in proxy.injected) == sorted(k for _, k in FAULTS.values())
        calls = {}
        for name in FAULTS:
            widget = await engine.widget(name)
            assert widget is not None
            assert widget["metadata"]["finalizers"] == [FINALIZER], widget["metadata"]
            listed = await engine.api.get(f"{CONFIGMAPS}?labelSelector=app%3D{name}")
            assert listed is not None
            assert [c["metadata"]["name"] for c in listed["items"]] == [f"{name}-config"]
            calls[f"{widget['metadata']['uid']}:1:register"] = 1
        assert engine.service.calls == calls
        # the finalizer the server applied unheard is not patched in blind a second time:
        # the retry finds it (in the watch's view, or by a GET after a 409 on the stale
        # resourceVersion the retry carries)
        widget_path = FAULTS["finalized"][0]
        patches = [r for r in proxy.seen("PATCH", widget_path) if not r.path.endswith("/status")]
        reads = proxy.seen("GET", widget_path)
        assert len(patches) == 1 or (len(patches) == 2 and reads), (patches, reads)
