"""`engine bench kopf`: the same Widget workload run by kopf and by the engine, side by
side on the embedded API server, interleaved over rounds.

Each round runs both operators one after the other (the order alternates from round to
round), each on a fresh server holding the Widget CRD and N Widgets, each in its own
process; `kopf_side.run_side` says what one run measures. Before the first round the
engine's modules are compiled to bytecode (`compile_bytecode`), as kopf's were when pip
installed it. Every ratio is engine / kopf
within one round, given as min / median / max over the rounds; each side's figures are
medians over the rounds. Both sides must verify, or the benchmark fails.
"""

from __future__ import annotations

import compileall
import importlib.util
import json
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import engine
from engine.bench.kopf_side import KopfBenchError, Side, SideRun, run_side

RATIOS = {
    "ratio_cpu": "cpu_s",
    "ratio_wall": "wall_s",
    "ratio_requests": "request_count",
    "ratio_server_cpu": "server_cpu_s",
    "ratio_rss": "peak_rss_kib",
    "ratio_server_cpu_per_request": "server_cpu_per_request",
}
"""Each ratio's name → the `SideRun` figure it divides (engine / kopf)."""

SIDES: tuple[Side, Side] = ("kopf", "engine")


def require_kopf() -> None:
    """Raise KopfBenchError, naming the install line, when kopf cannot be imported."""
    if importlib.util.find_spec("kopf") is None:
        raise KopfBenchError("kopf is not installed: pip install 'engine[bench]'")


def compile_bytecode(package: Path) -> bool:
    """Compile every module under `package` to bytecode where it is missing or stale;
    True when all of them compiled (a read-only install keeps what it has).

    kopf starts from the bytecode pip wrote when it installed kopf, as an installed engine
    does; an editable install run with PYTHONDONTWRITEBYTECODE=1 has none, and without
    this every start of the engine's side would compile its modules from source (about
    0.2 s of CPU per start on the machine of the README's figures), a cost only that
    side would pay. Prints nothing (the benchmark's JSON goes to stdout)."""
    return bool(compileall.compile_dir(str(package), quiet=2, workers=1))


@dataclass(frozen=True)
class Spread:
    """min / median / max of one figure over the rounds."""

    min: float
    median: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float], digits: int = 3) -> Spread:
        return cls(
            min=round(min(values), digits),
            median=round(statistics.median(values), digits),
            max=round(max(values), digits),
        )


def side_summary(runs: Sequence[SideRun]) -> dict[str, Any]:
    """One side's medians over the rounds, and its requests per object by kind."""
    count = runs[0].resources
    kinds = sorted({kind for run in runs for kind in run.requests})
    return {
        "wall_s": round(statistics.median(run.wall_s for run in runs), 3),
        "cpu_s": round(statistics.median(run.cpu_s for run in runs), 3),
        "cpu_ms_per_resource": round(
            statistics.median(run.cpu_s for run in runs) * 1000 / count, 3
        ),
        "peak_rss_mb": round(statistics.median(run.peak_rss_kib for run in runs) / 1024, 1),
        "server_cpu_s": round(statistics.median(run.server_cpu_s for run in runs), 3),
        "server_cpu_ms_per_request": round(
            statistics.median(run.server_cpu_s * 1000 / max(1, run.request_count) for run in runs),
            3,
        ),
        "requests_per_object": round(
            statistics.median(run.request_count for run in runs) / count, 2
        ),
        "requests_per_object_by_kind": {
            kind: round(statistics.median(run.requests.get(kind, 0) for run in runs) / count, 2)
            for kind in kinds
        },
        "verified": True,  # run_side raises when a side's work does not verify
    }


def _ratio(engine: SideRun, kopf: SideRun, figure: str) -> float:
    denominator = float(getattr(kopf, figure))
    return float(getattr(engine, figure)) / denominator if denominator else float("inf")


@dataclass(frozen=True)
class SizeFigures:
    """Both sides at one N over every round, and the ratios."""

    resources: int
    rounds: list[dict[str, SideRun]]

    def as_dict(self) -> dict[str, Any]:
        by_side = {side: [run[side] for run in self.rounds] for side in SIDES}
        figures: dict[str, Any] = {
            "resources": self.resources,
            "rounds": len(self.rounds),
            **{side: side_summary(by_side[side]) for side in SIDES},
        }
        for name, figure in RATIOS.items():
            values = [_ratio(run["engine"], run["kopf"], figure) for run in self.rounds]
            figures[name] = asdict(Spread.of(values, digits=2))
        figures["per_round"] = [
            {side: {**asdict(run[side]), "request_count": run[side].request_count}
             for side in SIDES}
            for run in self.rounds
        ]  # fmt: skip
        return figures


async def run_bench(*, sizes: Sequence[int], rounds: int) -> list[SizeFigures]:
    """Every size, `rounds` interleaved rounds each."""
    require_kopf()
    compile_bytecode(Path(engine.__file__).parent)
    measured: list[SizeFigures] = []
    for count in sizes:
        results: list[dict[str, SideRun]] = []
        for index in range(rounds):
            order = SIDES if index % 2 == 0 else SIDES[::-1]
            one: dict[str, SideRun] = {}
            for side in order:
                with tempfile.TemporaryDirectory(prefix=f"engine-bench-kopf-{side}-") as d:
                    one[side] = await run_side(side, resources=count, scratch=Path(d))
            results.append(one)
        measured.append(SizeFigures(resources=count, rounds=results))
    return measured


def as_json(measured: Sequence[SizeFigures]) -> str:
    return json.dumps({"sizes": [size.as_dict() for size in measured]}, sort_keys=True)


def describe(measured: Sequence[SizeFigures]) -> str:
    """A table per size: each side's medians, and each ratio's min / median / max."""
    lines: list[str] = []
    for size in measured:
        figures = size.as_dict()
        kopf, engine = figures["kopf"], figures["engine"]
        lines.append(f"N = {size.resources}, {figures['rounds']} round(s); both verified")
        lines.append(f"{'':28}{'kopf':>10}{'engine':>10}   engine / kopf (min / median / max)")
        rows = (
            ("wall s", "wall_s", "ratio_wall"),
            ("operator CPU ms/resource", "cpu_ms_per_resource", "ratio_cpu"),
            ("requests per object", "requests_per_object", "ratio_requests"),
            ("server CPU s", "server_cpu_s", "ratio_server_cpu"),
            (
                "server CPU ms per request",
                "server_cpu_ms_per_request",
                "ratio_server_cpu_per_request",
            ),
            ("peak RSS MB", "peak_rss_mb", "ratio_rss"),
        )
        for label, key, ratio in rows:
            spread = figures[ratio]
            lines.append(
                f"{label:28}{kopf[key]:>10}{engine[key]:>10}   "
                f"{spread['min']} / {spread['median']} / {spread['max']}"
            )
        for side in ("kopf", "engine"):
            kinds = ", ".join(
                f"{kind} {value}"
                for kind, value in figures[side]["requests_per_object_by_kind"].items()
            )
            lines.append(f"{side} requests per object: {kinds}")
        lines.append("")
    return "\n".join(lines).rstrip()
