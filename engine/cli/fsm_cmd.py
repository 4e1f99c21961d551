"""`engine fsm`: the resource state machine as a diagram; `engine bench fsm`: its memory."""

from __future__ import annotations

import click

from engine.bench import fsm as fsm_bench
from engine.fsm.diagram import FORMATS, render


@click.command(name="fsm")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="mermaid",
    show_default=True,
    help="Diagram language.",
)
def command(fmt: str) -> None:
    """Print the state machine, generated from its transition table."""
    click.echo(render(fmt), nl=False)


@click.command(name="fsm")
@click.option("--resources", default=10_000, show_default=True, help="Resources to fold.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_command(resources: int, as_json: bool) -> None:
    """Bytes per tracked resource (folded state + machine) and fold speed."""
    if resources < 1:
        raise click.BadParameter("--resources must be >= 1")
    figures = fsm_bench.run_bench(resources=resources)
    click.echo(figures.as_json() if as_json else fsm_bench.describe(figures))
