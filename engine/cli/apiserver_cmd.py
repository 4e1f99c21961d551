"""`engine apiserver`: run the embedded Kubernetes-compatible API server."""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from pathlib import Path
from typing import Any

import click

from engine.apiserver.authn.oidc import OidcConfigError
from engine.apiserver.authn.service_accounts import SigningKeyError
from engine.apiserver.authn.static_tokens import TokenFileError
from engine.apiserver.authn.webhook import WebhookConfigError
from engine.apiserver.http.certificates import CertificateError
from engine.apiserver.http.security import SecurityConfigError
from engine.apiserver.http.server import run_apiserver
from engine.apiserver.kubelet.pod_stages import KubeletSettings
from engine.apiserver.store.storage import ForeignDatabase
from engine.cli import apiserver_restore_cmd
from engine.cli.apiserver_flags import BadFlag, security_flags, security_from_flags

_SECURITY_ERRORS = (
    OidcConfigError, SigningKeyError, TokenFileError, WebhookConfigError, CertificateError,
    SecurityConfigError,
)  # fmt: skip


@click.group(name="apiserver", invoke_without_command=True, subcommand_metavar="[restore ...]")
@click.option("--db", default=":memory:", show_default=True, help="SQLite file, or :memory:.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0 picks a free one).",
)
@click.option(
    "--kubeconfig",
    "kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write a kubeconfig for kubectl and clients (required to serve).",
)
@click.option(
    "--audit-log",
    "audit_log",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append one JSON line per request to this file.",
)
@click.option(
    "--nodes",
    default=1,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Simulated nodes the built-in kubelet registers.",
)
@click.option(
    "--pod-start-delay",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="Seconds a bound Pod stays Pending before it runs (simulated kubelet).",
)
@click.option(
    "--pod-run-seconds",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0, 86400),
    help="Seconds a Job's Pod runs before it succeeds (simulated kubelet).",
)
@click.option(
    "--pod-grace-cap",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="Longest a deleted Pod's grace period is honoured, in seconds.",
)
@security_flags
@click.pass_context
def command(
    ctx: click.Context,
    /,
    db: str,
    host: str,
    port: int,
    kubeconfig: Path | None,
    audit_log: Path | None,
    nodes: int,
    pod_start_delay: float,
    pod_run_seconds: float,
    pod_grace_cap: float,
    **flags: Any,
) -> None:
    """Serve the Kubernetes API from SQLite until Ctrl-C or SIGTERM; state survives restarts.

    Workload controllers (ReplicaSet, Deployment, StatefulSet, Job, Namespace) and a
    simulated kubelet run inside it, so Pods go Running without containers.
    Authentication, RBAC and HTTPS take kube-apiserver's flag names (docs/apiserver-auth.md).
    `engine apiserver restore BACKUP --db PATH` writes a database from a backup copy, its
    revision bumped so that every client relists (docs/apiserver.md).
    """
    if ctx.invoked_subcommand is not None:
        return
    if kubeconfig is None:
        raise click.UsageError("Missing option '--kubeconfig': where to write the kubeconfig.")
    security = security_from_flags(flags)
    kubelet = KubeletSettings(
        nodes=nodes,
        start_delay=pod_start_delay,
        run_seconds=pod_run_seconds,
        grace_cap=pod_grace_cap,
    )
    if db != ":memory:" and not Path(db).resolve().parent.is_dir():
        raise click.ClickException(f"--db {db}: the directory does not exist; create it first")
    try:
        asyncio.run(
            run_apiserver(
                db=db,
                host=host,
                port=port,
                kubeconfig_path=kubeconfig,
                audit_log=audit_log,
                kubelet=kubelet,
                announce=lambda line: click.echo(line, err=False),
                security=security,
            )
        )
    except _SECURITY_ERRORS as bad:
        raise BadFlag(str(bad)) from None
    except OSError as bad:
        if bad.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"port {port} on {host} is already in use; pick another --port (0 picks a free one)"
            ) from None
        raise click.ClickException(f"cannot start the API server: {bad}") from None
    except ForeignDatabase as bad:
        raise click.ClickException(
            f"--db {db} is not an API server database: {bad}; pass a new file or :memory:"
        ) from None
    except sqlite3.DatabaseError as bad:
        raise click.ClickException(f"--db {db} is not a usable SQLite database: {bad}") from None


command.add_command(apiserver_restore_cmd.command)
