"""`engine bench …`: the project's benchmarks, one subcommand each."""

from __future__ import annotations

import asyncio
import importlib
import os
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
    watchers: int,
    deployments: int,
    replicas: int,
    as_json: bool,
) -> None:
    """Run `engine apiserver` in a child process and measure it over HTTP."""
    if min(objects, patches, concurrency, watchers) < 1:
        raise click.BadParameter("--objects, --patches, --concurrency and --watchers must be >= 1")
    if min(deployments, replicas) < 0:
        raise click.BadParameter("--deployments and --replicas must be >= 0")
    bench = _bench("apiserver")
    settings = bench.BenchSettings(
        objects=objects,
        patches=patches,
        concurrency=concurrency,
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
            f"objects stored           {figures.objects} (writers: {figures.concurrency})",
            f"creates/s                {figures.creates_per_second}",
            f"merge patches/s          {figures.merge_patches_per_second}",
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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def soak(iterations: int, resources: int, seed: int, as_json: bool) -> None:
    """Sites created, updated, deleted; the engine SIGKILLed at random moments; every
    history check after each iteration (docs/reliability.md)."""
    if iterations < 1 or resources < 1:
        raise click.BadParameter("--iterations and --resources must be >= 1")
    bench = _bench("soak")
    try:
        figures = asyncio.run(
            bench.run_soak(
                bench.SoakSettings(iterations=iterations, resources=resources, seed=seed)
            )
        )
    except bench.SoakError as failed:
        raise click.ClickException(str(failed)) from None
    click.echo(figures.as_json() if as_json else figures.describe())


# `engine bench fsm` lives beside `engine fsm`; the group only lists it.
command.add_command(fsm_cmd.bench_command)
