"""`engine run`: an operator's engine (`--operator REF`, default the example Site), on the
embedded API server (`--local`) or on a real cluster (`--kubeconfig PATH` /
`--in-cluster`), until Ctrl-C, SIGTERM or `--duration` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import click

from engine import load_settings
from engine.cli.operator_ref import EXAMPLE_OPERATOR, default_ref, load_operator, operator_option
from engine.cli.start_collector import paused
from engine.journal.errors import JournalUnavailable
from engine.runtime.manager import start_scan
from engine.runtime.manager.settings import SettingsError


class BadSetting(click.ClickException):
    """A setting that cannot be used (its source and what to do named): bad input."""

    exit_code = 2


REPO_SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"


@click.command(name="run")
@operator_option("The operator to run.")
@click.option("--local", is_flag=True, help="Start the embedded API server in the state dir.")
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Run against the cluster in this kubeconfig.",
)
@click.option("--in-cluster", is_flag=True, help="Run against the cluster of this pod.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Journal, API server database, registry state and kubeconfig [setting state_dir].",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML settings file (see config/engine.toml).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop after this many seconds (default: run until Ctrl-C or SIGTERM).",
)
@click.option("--no-samples", is_flag=True, help="With --local: do not create the samples.")
@click.option(
    "--samples",
    "samples_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory of sample objects to create with --local [default: the example's "
    "config/samples, for the example operator only].",
)
@click.option(
    "--registry-url",
    default=None,
    help="The example registry service to use (default: one started in-process).",
)
@click.option(
    "--health-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port of /healthz, /readyz, /metrics; 0 picks a free one [setting health_port].",
)
@click.option(
    "--shards",
    type=click.IntRange(min=0),
    default=None,
    help="Split the keys into N shards held by active replicas on a postgresql:// journal "
    "[setting shards].",
)
@click.option("--plain", is_flag=True, help="Print one line per change, even on a terminal.")
@click.option(
    "--rbac",
    is_flag=True,
    help="With --local: enforce RBAC over HTTPS; the engine runs as the ServiceAccount and "
    "roles of config/.",
)
def command(
    operator_ref: str | None,
    local: bool,
    kubeconfig: Path | None,
    in_cluster: bool,
    state_dir: Path | None,
    config_path: Path | None,
    duration: float | None,
    no_samples: bool,
    samples_dir: Path | None,
    registry_url: str | None,
    health_port: int | None,
    shards: int | None,
    plain: bool,
    rbac: bool,
) -> None:
    """Reconcile an operator's resources and show each one's state as it changes."""
    chosen = [name for name, on in (("--local", local), ("--kubeconfig", kubeconfig is not None),
                                    ("--in-cluster", in_cluster)) if on]  # fmt: skip
    if len(chosen) != 1:
        raise click.UsageError(
            "choose exactly one of --local, --kubeconfig PATH or --in-cluster"
            + (f" (got {' and '.join(chosen)})" if chosen else "")
        )
    if rbac and not local:
        raise click.UsageError("--rbac goes with --local (a real cluster enforces its own RBAC)")
    reference = operator_ref or default_ref()
    with paused():  # the operator's imports (see start_collector)
        operator = load_operator(reference)
    example = reference == EXAMPLE_OPERATOR
    if samples_dir is not None and not samples_dir.is_dir():
        raise click.BadParameter(f"{samples_dir} is not a directory", param_hint="--samples")
    overrides: dict[str, object] = {
        "state_dir": state_dir,
        "kubeconfig": kubeconfig,
        "in_cluster": True if in_cluster else None,
        "health_port": health_port,
        "shards": shards,
        # On a laptop the health endpoints stay on loopback unless asked otherwise.
        "health_host": "127.0.0.1" if local and "ENGINE_HEALTH_HOST" not in os.environ else None,
        # ... and the webhooks on a free port (their URL is registered wherever it lands).
        "webhook_port": 0 if local and "ENGINE_WEBHOOK_PORT" not in os.environ else None,
    }
    try:
        settings = load_settings(config_path=config_path, env=os.environ, overrides=overrides)
    except SettingsError as bad:
        raise BadSetting(str(bad)) from None
    # the journal's start-up scan runs in its thread while the rest of the engine is
    # imported and connects (an operator with webhooks opens its journal first: no scan)
    early_scan = None
    if not operator.serves_webhooks:
        with contextlib.suppress(JournalUnavailable):  # the controller's open says what
            early_scan = start_scan.begin(start_scan.journal_file(settings))
    with paused():  # the rest of the engine's imports (see start_collector)
        from engine.cli.run_engine import RunPlan, run_engine

    samples = None
    if local and not no_samples:
        default = REPO_SAMPLES if example and REPO_SAMPLES.is_dir() else None
        samples = samples_dir or default
    plan = RunPlan(
        settings=settings,
        operator=operator,
        example=example,
        local=local,
        samples_dir=samples,
        registry_url=registry_url,
        duration=duration,
        plain=plain,
        rbac=rbac,
        early_scan=early_scan,
    )
    asyncio.run(run_engine(plan))
