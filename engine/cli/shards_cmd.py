"""`engine shards --kubeconfig K`: the members of a sharded deployment, the shard map
(who holds each shard, under which term, and who should by rendezvous hashing) read from
the member and shard Leases."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from engine.runtime.sharding.keyspace import assignment, shard_names
from engine.runtime.sharding.members import MEMBER_INFIX, LeaseView, read_leases
from engine.watchers import ClusterConfigError, ClusterUnreachableError, connect_kubeconfig


class BadInput(click.ClickException):
    """One line naming the problem and what to do; exit code 2."""

    exit_code = 2


@click.command(name="shards")
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The cluster the replicas run against.",
)
@click.option("--namespace", default="default", show_default=True, help="Where the Leases are.")
@click.option("--prefix", default="engine", show_default=True, help="The Leases' name prefix.")
@click.option(
    "--shards",
    "count",
    type=click.IntRange(min=1),
    default=None,
    help="How many shards the replicas use [default: as many as the shard Leases show].",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def command(
    kubeconfig: Path, namespace: str, prefix: str, count: int | None, as_json: bool
) -> None:
    """Print the members, the shard map and the terms of a sharded deployment."""
    leases = asyncio.run(_leases(kubeconfig, namespace, prefix))
    report = shard_report(leases, prefix=prefix, count=count, now=datetime.now(UTC))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(render(report))


async def _leases(kubeconfig: Path, namespace: str, prefix: str) -> list[LeaseView]:
    try:
        api = await connect_kubeconfig(kubeconfig)
    except (ClusterConfigError, ClusterUnreachableError) as error:
        raise BadInput(str(error)) from None
    try:
        return await read_leases(api, namespace, prefix)
    except (OSError, TimeoutError) as error:
        raise BadInput(f"cannot list Leases in {namespace}: {error}") from None
    except Exception as error:  # the client's ApiException: forbidden, not found, ...
        status = getattr(error, "status", None)
        reason = getattr(error, "reason", type(error).__name__)
        raise BadInput(
            f"listing Leases in namespace {namespace} was refused (HTTP {status} {reason}): "
            "check the namespace and that this user may list coordination.k8s.io Leases"
        ) from None
    finally:
        await api.close()


def shard_report(
    leases: list[LeaseView], *, prefix: str, count: int | None, now: datetime
) -> dict[str, Any]:
    """The members (live or not), and per shard its holder, term and rendezvous owner."""
    members = [lease for lease in leases if MEMBER_INFIX in lease.name]
    shard_leases = {
        lease.name.removeprefix(f"{prefix}-"): lease
        for lease in leases
        if lease.name.startswith(f"{prefix}-shard-")
    }
    if count is None:
        indexes = [int(name.rsplit("-", 1)[1]) for name in shard_leases if name[-2:].isdigit()]
        count = max(indexes) + 1 if indexes else 0
    live = sorted({m.holder for m in members if not m.expired(now)})
    wanted = assignment(count, live) if count else {}
    shards = []
    for shard in shard_names(count) if count else ():
        lease = shard_leases.get(shard)
        holder = lease.holder if lease is not None and not lease.expired(now) else ""
        shards.append(
            {
                "shard": shard,
                "holder": holder,
                "term": lease.term if lease is not None else 0,
                "expected": wanted.get(shard) or "",
            }
        )
    return {
        "members": [
            {
                "identity": m.holder,
                "lease": m.name,
                "live": not m.expired(now),
                "renewed_s_ago": round((now - m.renewed).total_seconds(), 1) if m.renewed else None,
            }
            for m in members
        ],
        "shards": shards,
    }


def render(report: dict[str, Any]) -> str:
    members, shards = report["members"], report["shards"]
    lines = [f"members ({sum(1 for m in members if m['live'])} live):"]
    for member in members:
        state = "live" if member["live"] else "expired"
        ago = member["renewed_s_ago"]
        renewed = f", renewed {ago:g} s ago" if ago is not None else ""
        lines.append(f"  {member['identity'] or '-'}  {member['lease']}  {state}{renewed}")
    if not members:
        lines.append("  none (no replica runs with shards here)")
    lines.append(f"shards ({len(shards)}):")
    lines.append(f"  {'SHARD':<10} {'HOLDER':<28} {'TERM':>5}  EXPECTED")
    for row in shards:
        moving = "" if row["holder"] == row["expected"] else "  (moving)"
        holder = row["holder"] or "-"
        lines.append(
            f"  {row['shard']:<10} {holder:<28} {row['term']:>5}  {row['expected'] or '-'}{moving}"
        )
    return "\n".join(lines)
