"""`engine bench kopf` end to end at N = 5, one round: kopf and the engine each run in
their own process on a fresh embedded API server, both verify, and the JSON carries every
figure and ratio. Figures are not asserted against targets: speed is the benchmark's."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.bench.kopf import RATIOS, as_json, run_bench
from engine.cli.bench_cmd import command as bench_command

pytestmark = pytest.mark.e2e

SIDE_KEYS = {
    "wall_s", "cpu_s", "cpu_ms_per_resource", "peak_rss_mb", "server_cpu_s",
    "server_cpu_ms_per_request",
    "requests_per_object", "requests_per_object_by_kind", "verified",
}  # fmt: skip
SPREAD_KEYS = {"min", "median", "max"}


async def test_bench_kopf_runs_both_sides_and_both_verify() -> None:
    (size,) = json.loads(as_json(await run_bench(sizes=[5], rounds=1)))["sizes"]
    assert size["resources"] == 5
    assert size["rounds"] == 1
    for side in ("kopf", "engine"):
        figures = size[side]
        assert set(figures) == SIDE_KEYS
        assert figures["verified"] is True
        assert figures["wall_s"] > 0
        assert figures["cpu_s"] > 0
        assert figures["peak_rss_mb"] > 0
        # each side created or applied one ConfigMap per Widget and wrote its status
        by_kind = figures["requests_per_object_by_kind"]
        assert by_kind.get("create configmaps", 0) + by_kind.get("patch configmaps", 0) >= 1
        assert by_kind["patch widgets/status"] >= 1
        # the harness's own creates, lists and watch are not counted
        assert "create widgets" not in by_kind
    for ratio in RATIOS:
        assert set(size[ratio]) == SPREAD_KEYS
        assert 0 < size[ratio]["min"] <= size[ratio]["median"] <= size[ratio]["max"]
    (round_one,) = size["per_round"]
    assert {"kopf", "engine"} == set(round_one)


@pytest.mark.parametrize(
    ("args", "named"),
    [(["--resources", "0"], "--resources"), (["--rounds", "0"], "--rounds")],
)
def test_bench_kopf_refuses_bad_sizes_in_one_line(args: list[str], named: str) -> None:
    result = CliRunner().invoke(bench_command, ["kopf", *args])
    assert result.exit_code == 2
    assert named in result.output
    assert "Traceback" not in result.output
