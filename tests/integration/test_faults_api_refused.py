"""B.2 A8a and A8c: the running engine, through the fault proxy, against the embedded API
server. A child apply refused with 403 (the proxy answers for a missing RBAC rule) and
one refused with a real 422 (the API server finds the child's name invalid) are
terminal: the Widget is Failed with the refusal in its `Failed` condition, a Warning
Event names it, and the apply is not sent again; another Widget gets Ready meanwhile."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.runtime.reconcile.handler_context import Context
from tests.integration.reconcile_support import (
    CONFIGMAPS,
    NAMESPACE,
    Engine,
    ExternalService,
    eventually,
    running_engine,
    widget_operator,
)
from tests.support.fault_proxy import FORBIDDEN, FaultSettings

EVENTS = f"/api/v1/namespaces/{NAMESPACE}/events"


def _operator_naming_its_child_from_the_spec(service: ExternalService) -> Any:
    """The Widget operator, but the child is named `<widget>-<spec.message>`."""

    async def provision(ctx: Context) -> None:
        await ctx.apply_child(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{ctx.name}-{ctx.spec['message']}"},
                "data": {"size": str(ctx.spec["size"])},
            }
        )

        async def register(key: str) -> dict[str, Any]:
            service.call(key)
            return {"registered": ctx.name}

        await ctx.effect("register", register)

    return replace(widget_operator(service), provision=provision)


async def _warnings_about(engine: Engine, name: str) -> list[dict[str, Any]]:
    listed = await engine.api.get(EVENTS)
    assert listed is not None
    return [
        event
        for event in listed["items"]
        if event["involvedObject"]["name"] == name and event["type"] == "Warning"
    ]


async def test_403_and_422_on_a_child_apply_fail_the_widget_with_a_condition_and_an_event(
    tmp_path: Path,
) -> None:
    service = ExternalService()
    operator = _operator_naming_its_child_from_the_spec(service)
    denied_path = f"{CONFIGMAPS}/denied-config"
    refuse = FaultSettings(
        rate=1.0, kinds=(FORBIDDEN,), methods=("PATCH",), path_contains=denied_path
    )
    async with running_engine(tmp_path, operator=operator, fault_proxy=refuse) as engine:
        proxy = engine.proxy
        assert proxy is not None
        await engine.api.create_widget("denied", size=1, message="config")
        await engine.api.create_widget("invalid", size=1, message="bad_name")
        await engine.api.create_widget("fine", size=1, message="config")

        async def settled() -> bool:
            phases = [await engine.phase(n) for n in ("denied", "invalid", "fine")]
            return phases == ["Failed", "Failed", "Ready"]

        await eventually(settled, "denied and invalid Failed, fine Ready")
        await asyncio.sleep(0.5)  # a retry would be sent by now

        for name, code, path in (
            ("denied", "403", denied_path),
            ("invalid", "422", f"{CONFIGMAPS}/invalid-bad_name"),
        ):
            widget = await engine.widget(name)
            assert widget is not None
            status = widget["status"]
            assert status["phase"] == "Failed"
            failed = next(c for c in status["conditions"] if c["type"] == "Failed")
            assert failed["status"] == "True"
            assert code in failed["message"], failed
            warnings = await _warnings_about(engine, name)
            assert warnings, f"a Warning Event about {name}"
            assert any(code in event["message"] for event in warnings), warnings
            assert len(proxy.seen("PATCH", path)) == 1, (
                f"the refused apply of {name} is not retried"
            )
        assert proxy.kinds_injected() == {FORBIDDEN}
        fine = await engine.widget("fine")
        assert fine is not None
        assert service.calls == {f"{fine['metadata']['uid']}:1:register": 1}
