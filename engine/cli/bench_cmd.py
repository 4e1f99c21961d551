"""`engine bench …`: the project's benchmarks, one subcommand each."""

from __future__ import annotations

import asyncio
import os

import click

from engine.bench import journal as journal_bench
from engine.bench import reconcile as reconcile_bench
from engine.bench import ui as ui_bench
from engine.bench.apiserver import ApiServerFigures, BenchError, BenchSettings, run_bench
from engine.bench.browser import BrowserMissing
from engine.cli import fsm_cmd
from engine.journal.sqlite import Synchronous
from engine.runtime.settings import SettingsError, load_settings


@click.group(name="bench")
def command() -> None:
    """Measure the engine's parts; figures are printed, never asserted."""


@command.command(name="apiserver")
@click.option("--objects", default=10_000, show_default=True, help="Custom resources to create.")
@click.option("--patches", default=2_000, show_default=True, help="Merge patches to send.")
@click.option("--concurrency", default=8, show_default=True, help="Concurrent writers.")
@click.option("--watchers", default=10, show_default=True, help="Concurrent watchers.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def apiserver(objects: int, patches: int, concurrency: int, watchers: int, as_json: bool) -> None:
    """Run `engine apiserver` in a child process and measure it over HTTP."""
    if min(objects, patches, concurrency, watchers) < 1:
        raise click.BadParameter("--objects, --patches, --concurrency and --watchers must be >= 1")
    settings = BenchSettings(
        objects=objects, patches=patches, concurrency=concurrency, watchers=watchers
    )
    try:
        figures = asyncio.run(run_bench(settings))
    except BenchError as failed:
        raise click.ClickException(str(failed)) from failed
    click.echo(figures.as_json() if as_json else _describe(figures))


def _describe(figures: ApiServerFigures) -> str:
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
def journal(as_json: bool, events: int, synchronous: str) -> None:
    """Journal appends and replay beside plain aiosqlite on this machine."""
    if events < 1:
        raise click.BadParameter("--events must be >= 1")
    mode: Synchronous = "FULL" if synchronous == "FULL" else "NORMAL"
    figures = asyncio.run(journal_bench.run_bench(events=events, synchronous=mode))
    click.echo(figures.as_json() if as_json else journal_bench.describe(figures))


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
    try:
        overrides = {"health_port": 0, "max_concurrent_reconciles": concurrency}
        settings = load_settings(config_path=None, env=os.environ, overrides=overrides)
        figures = asyncio.run(reconcile_bench.run_bench(resources=resources, settings=settings))
    except (SettingsError, reconcile_bench.ReconcileBenchError) as failed:
        raise click.ClickException(str(failed)) from None
    click.echo(figures.as_json() if as_json else figures.describe())


@command.command(name="ui")
@click.option("--resources", default=10_000, show_default=True, help="Resources in the journal.")
@click.option("--loads", default=3, show_default=True, help="Times the page is opened.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def ui(resources: int, loads: int, as_json: bool) -> None:
    """The timeline page of a large journal in headless Chromium (20 records a resource)."""
    if resources < 1 or loads < 1:
        raise click.BadParameter("--resources and --loads must be >= 1")
    try:
        figures = ui_bench.run_bench(resources=resources, loads=loads)
    except BrowserMissing as missing:
        raise click.ClickException(str(missing)) from None
    click.echo(figures.as_json() if as_json else figures.describe())


# `engine bench fsm` lives beside `engine fsm`; the group only lists it.
command.add_command(fsm_cmd.bench_command)
