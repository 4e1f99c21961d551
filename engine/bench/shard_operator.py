"""The operator of the sharded runs (`engine bench scale` and the sharding fault tests):
a `Chore` whose provision makes one call to the shard target
(`ENGINE_SHARD_TARGET_URL`) under the step's idempotency key and the fence of the
shard it is reconciled in, and whose finalize makes another. No children."""

from __future__ import annotations

import os
from typing import Any

import aiohttp

from engine.effects.errors import RetryableError
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.operator import CustomResource, Operator
from engine.runtime.sharding.scope import current_scope

CHORE = CustomResource(
    group="shards.bench.engine.dev",
    version="v1",
    kind="Chore",
    plural="chores",
    schema={
        "type": "object",
        "properties": {
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    },
    printer_columns=({"name": "State", "type": "string", "jsonPath": ".status.phase"},),
)

_session: aiohttp.ClientSession | None = None


async def _call(key: str, term: int) -> Any:
    global _session
    if _session is None or _session.closed:
        _session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    scope = current_scope()
    shard = scope.shard if scope is not None else ""
    url = f"{os.environ['ENGINE_SHARD_TARGET_URL']}/calls/{key}"
    headers = {"X-Shard": shard, "X-Fencing-Term": str(term)}
    async with _session.put(url, headers=headers) as reply:
        body = await reply.json()
        if reply.status == 409:
            raise RetryableError(f"target refused a stale term: {body}", delay=1.0)
        if reply.status != 200:
            raise RetryableError(f"target answered {reply.status}", delay=0.5)
        return {"replayed": bool(body.get("replayed"))}


async def provision(ctx: Context) -> None:
    async def call(key: str) -> Any:
        return await _call(key, ctx.term)

    await ctx.effect("call", call)


async def finalize(ctx: Context) -> None:
    async def undo(key: str) -> Any:
        return await _call(key, ctx.term)

    await ctx.effect("undo", undo)


def operator() -> Operator:
    """The Chore operator (a function, as `--operator` accepts)."""
    return Operator(resource=CHORE, provision=provision, finalize=finalize)


OPERATOR = operator()
