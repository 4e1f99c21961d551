"""The Widget workload of `engine bench kopf`, written with the engine's public API.

Run as `engine run --operator engine/bench/kopf_widget_engine.py:OPERATOR`: each Widget
gets the ConfigMap `<name>-cm` with `data.size = str(spec.size)` (owned by the Widget,
as every child the engine applies), and the engine sets `status.phase = Ready`.
"""

from __future__ import annotations

from engine import ChildKind, Context, CustomResource, Operator

WIDGET = CustomResource(
    group="bench.example.dev",
    version="v1",
    kind="Widget",
    plural="widgets",
    schema={
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {"size": {"type": "integer", "minimum": 0}},
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    },
)


async def provision(ctx: Context) -> None:
    await ctx.apply_child(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{ctx.name}-cm"},
            "data": {"size": str(ctx.spec["size"])},
        }
    )


OPERATOR = Operator(
    resource=WIDGET,
    provision=provision,
    children=(ChildKind(group="", version="v1", kind="ConfigMap", plural="configmaps"),),
)
