"""`engine example-service`: run the example operator's registry service as its own process."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from engine.example.registry_service import Faults, serve_registry


@click.command(name="example-service")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port to listen on; 0 picks a free one (printed on start).",
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON file keeping registrations, idempotency records and the call log across restarts.",
)
@click.option("--latency", type=click.FloatRange(min=0), default=0.0, help="Seconds per call.")
@click.option(
    "--latency-jitter",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Up to this many extra seconds per call, at random.",
)
@click.option(
    "--failure-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of writes refused with 503 + Retry-After.",
)
@click.option(
    "--lost-reply-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of writes applied but answered with 503.",
)
@click.option(
    "--retry-after",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Retry-After seconds sent with injected 503s.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fault RNG.")
def command(
    host: str,
    port: int,
    state_path: Path | None,
    latency: float,
    latency_jitter: float,
    failure_rate: float,
    lost_reply_rate: float,
    retry_after: float,
    seed: int,
) -> None:
    """Serve the registry the example operator registers resources with, until stopped."""
    faults = Faults(
        latency_seconds=latency,
        latency_jitter_seconds=latency_jitter,
        failure_rate=failure_rate,
        lost_reply_rate=lost_reply_rate,
        retry_after_seconds=retry_after,
    )
    try:
        asyncio.run(_serve(host=host, port=port, state_path=state_path, faults=faults, seed=seed))
    except OSError as error:
        raise click.ClickException(
            f"cannot serve on {host}:{port}: {error.strerror or error}"
        ) from None
    except ValueError as error:
        raise click.ClickException(str(error)) from None


async def _serve(
    *, host: str, port: int, state_path: Path | None, faults: Faults, seed: int
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serve_registry(
        host=host, port=port, state_path=state_path, faults=faults, seed=seed
    ) as running:
        click.echo(f"registry service listening on {running.url}")
        await stop.wait()
    click.echo("registry service stopped")
