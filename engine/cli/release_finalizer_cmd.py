"""`engine release-finalizer NS/NAME`: the explicit, journaled way out of a stuck deletion.

Never automatic: the watchdog only reports a finalizer overdue. This command journals
`HealingApplied(action=release-finalizer)` in the resource's stream first, then removes
the engine's finalizer, so the API server can delete the object. Run it with the engine
stopped (the journal is locked while an engine has it open).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from engine import CustomResource
from engine.cli.operator_ref import load_operator, operator_option
from engine.effects.errors import PermanentError, RetryableError
from engine.effects.kube import KubeWriter
from engine.fsm import events as ev
from engine.identity import Kind
from engine.journal.errors import JournalError
from engine.journal.record import stream_name
from engine.journal.sqlite import SqliteJournal
from engine.watchers import ClusterConfigError, ClusterUnreachableError, connect_kubeconfig

ACTION = "release-finalizer"


@click.command(name="release-finalizer")
@click.argument("resource", metavar="NS/NAME")
@operator_option("The operator whose resource it is.")
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Kubeconfig of the cluster the resource lives in.",
)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The engine's journal (the engine must be stopped).",
)
@click.option(
    "--finalizer",
    default=None,
    help="The engine's finalizer name [default: the operator's, <group>/finalizer].",
)
def command(
    resource: str,
    operator_ref: str | None,
    kubeconfig: Path,
    journal_path: Path,
    finalizer: str | None,
) -> None:
    """Remove the engine's finalizer from a resource stuck in deletion, journaled first."""
    operator = load_operator(operator_ref)
    namespace, _, name = resource.partition("/")
    if not namespace or not name or "/" in name:
        raise click.ClickException(f"resource {resource!r} must be NAMESPACE/NAME")
    if not journal_path.is_file():
        raise click.ClickException(f"journal {journal_path} does not exist; pass --journal")
    message = asyncio.run(
        _release(
            operator.resource,
            (namespace, name),
            kubeconfig=kubeconfig,
            journal_path=journal_path,
            finalizer=finalizer or operator.finalizer_name,
        )
    )
    click.echo(message)


async def _release(
    resource: CustomResource,
    where: tuple[str, str],
    *,
    kubeconfig: Path,
    journal_path: Path,
    finalizer: str,
) -> str:
    namespace, name = where
    kind = resource.kind_ref
    try:
        api = await connect_kubeconfig(kubeconfig)
    except (ClusterConfigError, ClusterUnreachableError) as error:
        raise click.ClickException(str(error)) from None
    writer = KubeWriter(api)
    try:
        obj = await _get(writer, kind, namespace, name)
        metadata = obj.get("metadata", {})
        if finalizer not in (metadata.get("finalizers") or ()):
            raise click.ClickException(
                f"{resource.kind} {namespace}/{name} has no finalizer {finalizer}: "
                "nothing to release"
            )
        if not metadata.get("deletionTimestamp"):
            raise click.ClickException(
                f"{resource.kind} {namespace}/{name} is not being deleted; delete it first "
                "(the finalizer is released only for a stuck deletion)"
            )
        stream = stream_name(
            group=resource.group,
            kind=resource.kind,
            namespace=namespace,
            name=name,
            uid=str(metadata.get("uid") or ""),
        )
        reason = f"finalizer {finalizer} released by hand (engine release-finalizer)"
        await _journal(journal_path, stream, reason)
        try:
            await writer.remove_finalizer(kind, obj, finalizer)
        except (RetryableError, PermanentError) as error:
            raise click.ClickException(
                f"journaled, but removing the finalizer failed: {error}; run the command again"
            ) from None
    finally:
        await writer.close()
        await api.close()
    return f"released {finalizer} from {resource.kind} {namespace}/{name} (journaled in {stream})"


async def _get(writer: KubeWriter, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
    try:
        obj = await writer.get(kind, namespace, name)
    except (RetryableError, PermanentError) as error:
        raise click.ClickException(f"cannot read {kind.kind} {namespace}/{name}: {error}") from None
    if obj is None:
        raise click.ClickException(f"{kind.kind} {namespace}/{name} does not exist")
    return obj


async def _journal(path: Path, stream: str, reason: str) -> None:
    try:
        journal = await SqliteJournal.open(path)
    except JournalError as error:
        raise click.ClickException(
            f"cannot open the journal {path}: {error} (stop the engine first)"
        ) from None
    try:
        await journal.append(stream, [ev.healing_applied(action=ACTION, reason=reason)])
    finally:
        await journal.close()
