"""A small engine process for the crash tests: the Widget test operator whose external
step registers each widget with the example registry service.

Run: python -m tests.e2e.widget_engine KUBECONFIG JOURNAL REGISTRY_URL
(stops gracefully on SIGTERM; the tests also SIGKILL it).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from engine.effects import PermanentError, RetryableError
from engine.example.registry_client import (
    PermanentRegistryError,
    RegistryClient,
    RetryableRegistryError,
)
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.runtime.manager.settings import Settings
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.operator import ChildKind, CustomResource, Operator
from tests.integration.reconcile_support import GROUP, KIND, PLURAL, SCHEMA, VERSION


def registry_operator(client: RegistryClient) -> Operator:
    async def provision(ctx: Context) -> None:
        await ctx.apply_child(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{ctx.name}-config"},
                "data": {"size": str(ctx.spec["size"])},
            }
        )

        async def register(key: str) -> dict[str, Any]:
            try:
                done = await client.register(
                    ctx.name, dict(ctx.spec), idempotency_key=key, term=ctx.term
                )
            except RetryableRegistryError as error:
                raise RetryableError(str(error), delay=error.retry_after or 0.0) from None
            except PermanentRegistryError as error:
                raise PermanentError(str(error)) from None
            return {"revision": done.revision}

        await ctx.effect("register", register)

    return Operator(
        resource=CustomResource(GROUP, VERSION, KIND, PLURAL, SCHEMA),
        provision=provision,
        children=(ChildKind("", "v1", "ConfigMap", "configmaps"),),
    )


async def main(kubeconfig: Path, journal: Path, registry_url: str) -> None:
    settings = Settings(
        state_dir=journal.parent,
        kubeconfig=kubeconfig,
        health_port=0,
        health_host="127.0.0.1",
        max_concurrent_reconciles=8,
        backoff_base_seconds=0.01,
        backoff_cap_seconds=1.0,
    )
    async with RegistryClient(registry_url) as client:
        controller = Controller(
            ControllerDeps(
                operator=registry_operator(client), settings=settings, journal_path=journal
            )
        )
        await controller.run()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]))
