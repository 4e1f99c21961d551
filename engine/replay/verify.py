"""`--verify`: replay a journal through the live reconcile loop and report where the code
first writes something other than what the journal recorded.

There is one reconcile loop: replay builds it (see `replayed_run`) over the recorded
journal instead of a cluster, so any path the live engine takes, replay takes too.
"""

from __future__ import annotations

from pathlib import Path

from engine.replay.driver import UnknownResource, resource_filter
from engine.replay.recording import Divergence
from engine.replay.replayed_run import ReplayPolicy, ReplayReport, replay_through_loop
from engine.replay.source import Progress, read_records
from engine.replay.timeline import ResourceId
from engine.runtime.reconcile.operator import Operator
from engine.webhooks.decisions import is_webhook_stream

__all__ = ["Divergence", "ReplayPolicy", "ReplayReport", "verify_journal"]


async def verify_journal(
    path: Path,
    operator: Operator,
    *,
    resource: str | None = None,
    policy: ReplayPolicy | None = None,
    progress: Progress | None = None,
) -> ReplayReport:
    """Replay the journal at `path` through `operator`'s live loop (only `resource`'s
    stream when given: waits on other resources then find them missing).

    Errors: `JournalError` for the file, `FoldError` for a record that cannot be folded,
    `UnknownResource` when `resource` matches no stream.
    """
    keep = resource_filter(resource)
    records = []
    labels: set[str] = set()
    async for record in read_records(path, progress=progress):
        if is_webhook_stream(record.stream):
            continue  # webhook decisions: answered by the webhook server, not the loop
        if keep(record.stream):
            records.append(record)
        else:
            labels.add(ResourceId.of(record.stream).label)
    if resource is not None and not records:
        raise UnknownResource(resource, sorted(labels))
    return await replay_through_loop(records, operator, policy=policy)
