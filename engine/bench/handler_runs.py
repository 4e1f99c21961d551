"""`engine bench handlers`: what the test kit's handler environment costs per run (a fresh
environment, one provision with one child and one effect, in-process), and what
`import engine` costs in a fresh interpreter beside the interpreter alone."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from engine import ChildKind, Context, CustomResource, Operator
from engine.testing import HandlerEnvironment

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {"type": "object", "properties": {"text": {"type": "string"}}},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


async def _provision(ctx: Context) -> None:
    await ctx.apply_child(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{ctx.name}-note"},
         "data": {"text": str(ctx.spec.get("text", ""))}}
    )  # fmt: skip

    async def send(key: str) -> Any:
        return {"sent": key}

    await ctx.effect("send", send)


OPERATOR = Operator(
    resource=CustomResource(group="bench.test", version="v1", kind="Note", plural="notes",
                            schema=SCHEMA),
    provision=_provision,
    children=(ChildKind(group="", version="v1", kind="ConfigMap", plural="configmaps"),),
)  # fmt: skip


@dataclass(frozen=True)
class HandlerFigures:
    """Milliseconds per handler run (fresh environment each), and import seconds."""

    runs: int
    run_ms_mean: float
    run_ms_p50: float
    run_ms_p99: float
    import_engine_s: float
    python_alone_s: float

    def as_json(self) -> str:
        return json.dumps(asdict(self))

    def describe(self) -> str:
        return "\n".join(
            [
                f"handler runs               {self.runs} (fresh environment, provision)",
                f"ms per run mean / p50 / p99  {self.run_ms_mean} / {self.run_ms_p50} / "
                f"{self.run_ms_p99}",
                f"import engine (fresh python) {self.import_engine_s} s "
                f"(python alone {self.python_alone_s} s)",
            ]
        )


async def _runs(count: int) -> list[float]:
    seconds = []
    for index in range(count):
        began = time.perf_counter()
        run = await HandlerEnvironment(OPERATOR).provision({"text": "hi"}, name=f"n{index}")
        seconds.append(time.perf_counter() - began)
        if run.outcome != "succeeded":  # pragma: no cover - a broken kit, not a figure
            raise RuntimeError(f"handler run {index} ended {run.outcome}: {run.reason}")
    return seconds


def _interpreter_seconds(code: str) -> float:
    """The best of three fresh interpreters running `code`."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
        best = min(best, time.perf_counter() - began)
    return best


def run_bench(*, runs: int) -> HandlerFigures:
    """Measure `runs` handler runs and the import cost."""
    seconds = asyncio.run(_runs(runs))
    ms = sorted(s * 1000 for s in seconds)
    return HandlerFigures(
        runs=runs,
        run_ms_mean=round(statistics.fmean(ms), 3),
        run_ms_p50=round(ms[len(ms) // 2], 3),
        run_ms_p99=round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3),
        import_engine_s=round(_interpreter_seconds("import engine"), 3),
        python_alone_s=round(_interpreter_seconds("pass"), 3),
    )
