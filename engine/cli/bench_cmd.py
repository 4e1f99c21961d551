"""`engine bench …`: the project's benchmarks, one subcommand each."""

from __future__ import annotations

import asyncio
import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import click

from engine.cli import fsm_cmd

if TYPE_CHECKING:
    from engine.bench.apiserver import ApiServerFigures

# Each benchmark's module is imported by its own subcommand only: measuring one part
# must not load (nor count the memory of) every other benchmark's dependencies.


def _bench(name: str) -> ModuleType:
    return importlib.import_module(f"engine.bench.{name}")


@click.group(name="bench")
def command() -> None:
    """Measure the engine's parts; figures are printed, never asserted."""


@command.command(name="apiserver")
@click.option("--objects", default=10_000, show_default=True, help="Custom resources to create.")
@click.option("--patches", default=2_000, show_default=True, help="Merge patches to send.")
@click.option("--concurrency", default=8, show_default=True, help="Concurrent writers.")
@click.option(
    "--clients", default=2, show_default=True, help="Load client processes the writers share."
)
@click.option("--watchers", default=10, show_default=True, help="Concurrent watchers.")
@click.option(
    "--deployments", default=10, show_default=True, help="Deployments to roll out (0: skip)."
)
@click.option("--replicas", default=100, show_default=True, help="Replicas per Deployment.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def apiserver(
    objects: int,
    patches: int,
    concurrency: int,
    clients: int,
    watchers: int,
    deployments: int,
    replicas: int,
    as_json: bool,
) -> None:
    """Run `engine apiserver` in a child process and measure it over HTTP."""
    if min(objects, patches, concurrency, clients, watchers) < 1:
        raise click.BadParameter(
            "--objects, --patches, --concurrency, --clients and --watchers must be >= 1"
        )
    if min(deployments, replicas) < 0:
        raise click.BadParameter("--deployments and --replicas must be >= 0")
    bench = _bench("apiserver")
    settings = bench.BenchSettings(
        objects=objects,
        patches=patches,
        concurrency=concurrency,
        clients=clients,
        watchers=watchers,
        deployments=deployments,
        replicas=replicas,
    )
    try:
        figures = asyncio.run(bench.run_bench(settings))
    except bench.BenchError as failed:
        raise click.ClickException(str(failed)) from failed
    click.echo(figures.as_json() if as_json else _describe(figures))


def _describe(figures: ApiServerFigures) -> str:
    rollout = figures.rollout
    rollout_lines = (
        [
            f"rollout {rollout.deployments} x {rollout.replicas} replicas  "
            f"{rollout.rollout_seconds} s to {rollout.pods_running} Pods Running, "
            f"server CPU {rollout.server_cpu_seconds} s"
        ]
        if rollout is not None
        else []
    )
    return "\n".join(
        [
            f"objects stored           {figures.objects} (writers: {figures.concurrency} "
            f"in {figures.clients} client processes)",
            f"creates/s                {figures.creates_per_second}",
            f"merge patches/s          {figures.merge_patches_per_second}",
            f"server CPU per create    {figures.server_cpu_ms_per_create} ms",
            f"server CPU per patch     {figures.server_cpu_ms_per_patch} ms",
            f"list all ({figures.list_all_items} items)  {figures.list_all_seconds} s",
            f"watch latency p50 / p99  {figures.watch_latency_p50_ms} / "
            f"{figures.watch_latency_p99_ms} ms "
            f"({figures.watchers} watchers, {figures.watch_events_measured} events)",
            f"server peak RSS          {figures.server_peak_rss_kib} KiB "
            f"(now {figures.server_rss_kib} KiB)",
            *rollout_lines,
        ]
    )


@command.command(name="journal")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--events", default=1_000_000, show_default=True, help="Events for the replay figures."
)
@click.option(
    "--synchronous",
    type=click.Choice(["FULL", "NORMAL"]),
    default="FULL",
    show_default=True,
    help="SQLite synchronous setting for the append figures.",
)
@click.option(
    "--postgres-url",
    default=None,
    help="Also measure the PostgreSQL journal in this database (default: ENGINE_JOURNAL_URL "
    "when it is a postgresql:// URL); it works in schemas of its own and drops them.",
)
def journal(as_json: bool, events: int, synchronous: str, postgres_url: str | None) -> None:
    """Journal appends and replay beside plain aiosqlite (and PostgreSQL) on this machine."""
    if events < 1:
        raise click.BadParameter("--events must be >= 1")
    from engine.journal.location import is_postgres

    journal_bench, journal_postgres_bench = _bench("journal"), _bench("journal_postgres")
    mode = "FULL" if synchronous == "FULL" else "NORMAL"
    from_env = os.environ.get("ENGINE_JOURNAL_URL", "")
    url = postgres_url or (from_env if is_postgres(from_env) else None)
    if url is not None and not is_postgres(url):
        raise click.BadParameter("give a postgresql:// URL", param_hint="--postgres-url")
    postgres = None
    if url is not None:  # first, so a bad URL fails before the long SQLite part
        postgres = asyncio.run(journal_postgres_bench.run_bench(url, events=events))
    figures = asyncio.run(journal_bench.run_bench(events=events, synchronous=mode))
    if as_json:
        text = figures.as_json()
        click.echo(
            text if postgres is None else journal_postgres_bench.with_postgres(text, postgres)
        )
        return
    click.echo(journal_bench.describe(figures))
    if postgres is not None:
        click.echo(journal_postgres_bench.describe_figures(postgres))


@command.command(name="reconcile")
@click.option("--resources", default=1_000, show_default=True, help="Sites to reconcile.")
@click.option(
    "--concurrency",
    default=16,
    show_default=True,
    help="Keys the engine reconciles at once; the ceiling replays at the same concurrency.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def reconcile(resources: int, concurrency: int, as_json: bool) -> None:
    """Sites created, then reconciled to Ready by the engine; beside the raw API ceiling."""
    if resources < 1:
        raise click.BadParameter("--resources must be >= 1")
    if concurrency < 1:
        raise click.BadParameter("--concurrency must be >= 1")
    from engine.runtime.manager.settings import SettingsError, load_settings

    reconcile_bench = _bench("reconcile")
    try:
        overrides = {"health_port": 0, "max_concurrent_reconciles": concurrency}
        settings = load_settings(config_path=None, env=os.environ, overrides=overrides)
        figures = asyncio.run(reconcile_bench.run_bench(resources=resources, settings=settings))
    except (SettingsError, reconcile_bench.ReconcileBenchError) as failed:
        raise click.ClickException(str(failed)) from None
    click.echo(figures.as_json() if as_json else figures.describe())


@command.command(name="restart")
@click.option("--resources", default=10_000, show_default=True, help="Sites in the journal.")
@click.option(
    "--in-flight",
    default=100,
    show_default=True,
    help="Of them, Sites left with a step in flight when the engine stops.",
)
@click.option(
    "--build",
    type=click.Choice(["clone", "engine"]),
    default="clone",
    show_default=True,
    help="clone: a few Sites reconciled by the engine, cloned to --resources; "
    "engine: every Site reconciled by the engine (slow).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def restart(resources: int, in_flight: int, build: str, as_json: bool) -> None:
    """An engine restarted on a journal of N Sites: time to the first reconcile, to the
    in-flight work resumed, and to every Site settled."""
    if resources < 1:
        raise click.BadParameter("--resources must be >= 1")
    if not 1 <= in_flight <= resources:
        raise click.BadParameter("--in-flight must be between 1 and --resources")
    from engine.runtime.manager.settings import SettingsError, load_settings

    restart_bench = _bench("restart")
    try:
        settings = load_settings(config_path=None, env=os.environ, overrides={"health_port": 0})
        figures = asyncio.run(
            restart_bench.run_bench(
                resources=resources, in_flight=in_flight, settings=settings, build=build
            )
        )
    except (SettingsError, restart_bench.RestartBenchError) as failed:
        raise click.ClickException(str(failed)) from None
    click.echo(figures.as_json() if as_json else figures.describe())


@command.command(name="kopf")
@click.option(
    "--resources",
    "sizes",
    multiple=True,
    type=int,
    default=(1_000,),
    show_default=True,
    help="Widgets per run (repeat for several sizes).",
)
@click.option("--rounds", default=3, show_default=True, help="Interleaved rounds per size.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def kopf(sizes: tuple[int, ...], rounds: int, as_json: bool) -> None:
    """The Widget workload by kopf and by the engine, side by side (needs engine[bench])."""
    if min(sizes) < 1:
        raise click.BadParameter("every --resources must be >= 1", param_hint="--resources")
    if rounds < 1:
        raise click.BadParameter("--rounds must be >= 1", param_hint="--rounds")
    kopf_bench, kopf_side = _bench("kopf"), _bench("kopf_side")
    from engine.bench.apiserver import BenchError

    try:
        measured = asyncio.run(kopf_bench.run_bench(sizes=sizes, rounds=rounds))
    except (kopf_side.KopfBenchError, BenchError) as failed:
        raise click.ClickException(str(failed)) from None
    click.echo(kopf_bench.as_json(measured) if as_json else kopf_bench.describe(measured))


@command.command(name="handlers")
@click.option("--runs", default=500, show_default=True, help="Handler runs to time.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def handlers(runs: int, as_json: bool) -> None:
    """The test kit's in-memory handler runs, and the cost of `import engine`."""
    if runs < 1:
        raise click.BadParameter("--runs must be >= 1")
    figures = _bench("handler_runs").run_bench(runs=runs)
    click.echo(figures.as_json() if as_json else figures.describe())


@command.command(name="ui")
@click.option("--resources", default=10_000, show_default=True, help="Resources in the journal.")
@click.option("--loads", default=3, show_default=True, help="Times the page is opened.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def ui(resources: int, loads: int, as_json: bool) -> None:
    """The timeline page of a large journal in headless Chromium (20 records a resource)."""
    if resources < 1 or loads < 1:
        raise click.BadParameter("--resources and --loads must be >= 1")
    from engine.bench.browser import BrowserMissing

    try:
        figures = _bench("ui").run_bench(resources=resources, loads=loads)
    except BrowserMissing as missing:
        raise click.ClickException(str(missing)) from None
    click.echo(figures.as_json() if as_json else figures.describe())


@command.command(name="soak")
@click.option("--iterations", default=200, show_default=True, help="Kill-and-recover rounds.")
@click.option("--resources", default=500, show_default=True, help="Sites at the start.")
@click.option("--seed", default=1, show_default=True, help="Seeds the workload and the kills.")
@click.option(
    "--keep-failed",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the journal of each iteration whose verify failed here (as an export) "
    "[default: a new directory under the system's temporary one].",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def soak(
    iterations: int, resources: int, seed: int, keep_failed: Path | None, as_json: bool
) -> None:
    """Sites created, updated, deleted; the engine SIGKILLed at random moments; every
    history check after each iteration (docs/reliability.md). The journal of an
    iteration whose verify failed is kept; its problem names the file."""
    if iterations < 1 or resources < 1:
        raise click.BadParameter("--iterations and --resources must be >= 1")
    bench = _bench("soak")
    settings = bench.SoakSettings(
        iterations=iterations, resources=resources, seed=seed, keep_failed=keep_failed
    )
    try:
        figures = asyncio.run(bench.run_soak(settings))
    except bench.SoakError as failed:
        raise click.ClickException(str(failed)) from None
    click.echo(figures.as_json() if as_json else figures.describe())


# `engine bench fsm` lives beside `engine fsm`; the group only lists it.
command.add_command(fsm_cmd.bench_command)


@command.command(name="webhooks")
@click.option("--requests", default=1_000, show_default=True, help="Reviews per round and side.")
@click.option("--rounds", default=5, show_default=True, help="Interleaved rounds.")
@click.option("--concurrency", default=8, show_default=True, help="Concurrent clients.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def webhooks(requests: int, rounds: int, concurrency: int, as_json: bool) -> None:
    """AdmissionReviews over HTTPS: the engine's webhook server beside a bare ceiling."""
    if min(requests, rounds, concurrency) < 1:
        raise click.BadParameter("--requests, --rounds and --concurrency must be >= 1")
    bench = _bench("webhooks")
    figures = asyncio.run(
        bench.run_bench(requests=requests, rounds=rounds, concurrency=concurrency)
    )
    if as_json:
        click.echo(figures.as_json())
        return
    for name, side in (("engine", figures.engine), ("ceiling", figures.ceiling)):
        click.echo(
            f"{name:8} {side.requests_per_s:>9,.1f} reviews/s  p50 {side.p50_ms} ms  "
            f"p99 {side.p99_ms} ms"
        )
    click.echo(
        f"ratio engine/ceiling (throughput, per round): median {figures.ratio_median}, "
        f"min {figures.ratio_min}, max {figures.ratio_max} "
        f"({figures.rounds} rounds x {figures.requests} reviews, {figures.concurrency} clients)"
    )


@command.command(name="scale")
@click.option("--resources", default=2_000, show_default=True, help="Chores per replica count.")
@click.option("--effect-ms", default=20.0, show_default=True, help="Time of the external call.")
@click.option("--shards", default=16, show_default=True, help="Shards of the key space.")
@click.option("--workers", default=32, show_default=True, help="Concurrent reconciles a replica.")
@click.option("--lease-duration", default=5.0, show_default=True, help="Lease duration (s).")
@click.option("--rounds", default=1, show_default=True, help="Interleaved rounds of 1, 2, 3.")
@click.option("--throughput-only", is_flag=True, help="Skip the takeover and the rolling restart.")
@click.option(
    "--journal-url",
    default=None,
    help="A PostgreSQL database to use (a fresh schema per part, dropped after it) "
    "[default: ENGINE_TEST_POSTGRES_URL].",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def scale(
    resources: int,
    effect_ms: float,
    shards: int,
    workers: int,
    lease_duration: float,
    rounds: int,
    throughput_only: bool,
    journal_url: str | None,
    as_json: bool,
) -> None:
    """Sharded replicas (1, 2, 3 processes) on one PostgreSQL journal: throughput and
    scaling, the takeover of a dead member's shards, a rolling restart."""
    import tempfile
    from pathlib import Path

    url = journal_url or os.environ.get("ENGINE_TEST_POSTGRES_URL", "")
    if not url.startswith(("postgresql://", "postgres://")):
        raise click.BadParameter(
            "give a postgresql:// URL with --journal-url or ENGINE_TEST_POSTGRES_URL "
            "(`make pg` starts a throwaway server)",
            param_hint="--journal-url",
        )
    if min(resources, shards, workers, rounds) < 1 or effect_ms < 0 or lease_duration <= 1:
        raise click.BadParameter(
            "--resources, --shards, --workers, --rounds >= 1; --lease-duration > 1"
        )
    from engine.bench.shard_fleet import FleetError, FleetTimings
    from engine.journal.errors import JournalError

    bench = _bench("scale")
    timings = FleetTimings(
        shards=shards,
        lease_duration=lease_duration,
        renew_deadline=lease_duration * 0.7,
        retry_period=lease_duration / 5,
        workers=workers,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="engine-bench-scale-") as scratch:
            figures = asyncio.run(
                bench.run_bench(
                    url,
                    Path(scratch),
                    resources=resources,
                    effect_ms=effect_ms,
                    timings=timings,
                    rounds=rounds,
                    failover=not throughput_only,
                )
            )
    except (bench.ScaleBenchError, FleetError, JournalError) as failed:
        raise click.ClickException(str(failed)) from None
    click.echo(figures.as_json() if as_json else figures.describe())
