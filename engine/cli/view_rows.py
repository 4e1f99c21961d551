"""What `engine run` reads from the API server besides the engine's own watches: the
live view's rows (the controller's resource views, with the operator's printer-column
values read from its objects, listed again every second) and, with --local, whether the
operator's CRD is Established."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from engine.cli import live_view, printer_columns
from engine.effects.install import CRDS, Collection, InstallError, KubeApi, list_objects

LIST_EVERY_SECONDS = 1.0
"""How often the view re-reads the objects for the operator's printer columns."""


class ChangedRows:
    """Called again and again: the live view's rows of the resources whose view changed
    since the previous call (every one on the first), from `changed_since(serial)`."""

    def __init__(self, changed_since: Callable[[int], tuple[int, Sequence[Any]]]) -> None:
        self._changed_since = changed_since
        self._serial = 0

    def __call__(self) -> list[live_view.ViewRow]:
        self._serial, changed = self._changed_since(self._serial)
        return view_rows(changed)


def view_rows(
    snapshot: Any,
    *,
    columns: tuple[Mapping[str, Any], ...] = (),
    objects: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[live_view.ViewRow]:
    """The controller's resource views (`snapshot`) as the live view's rows, with the
    values of `columns` read from `objects` (`namespace/name` → the object last listed)."""
    listed = objects or {}
    return [
        live_view.ViewRow(
            namespace=view.namespace,
            name=view.name,
            state=view.state,
            generation=view.generation,
            last_event=view.last_event,
            created_at=_epoch(view.created),
            columns=printer_columns.values(columns, listed.get(f"{view.namespace}/{view.name}")),
        )
        for view in snapshot
    ]


async def keep_listing(
    api: KubeApi, collection: Collection, objects: dict[str, Mapping[str, Any]]
) -> None:
    """Refresh `objects` from a LIST every second, for the printer columns."""
    while True:
        try:
            listed = await list_objects(api, collection)
        except InstallError:
            listed = None  # keep showing the last values; the next LIST may answer
        if listed is not None:
            objects.clear()
            for item in listed:
                metadata = item.get("metadata") or {}
                objects[f"{metadata.get('namespace', '')}/{metadata.get('name')}"] = item
        await asyncio.sleep(LIST_EVERY_SECONDS)


def _epoch(timestamp: str) -> float | None:
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def wait_established(api: KubeApi, name: str, *, within: float = 30.0) -> None:
    """Return once the CRD `name` has the condition Established=True (one LIST of CRDs a
    tenth of a second; the engine's ClusterRole has no list on CRDs, so --local only).
    Errors: `InstallError` after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        for crd in await list_objects(api, CRDS):
            if (crd.get("metadata") or {}).get("name") != name:
                continue
            conditions = (crd.get("status") or {}).get("conditions") or ()
            if any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in conditions):  # fmt: skip
                return
        if loop.time() > deadline:
            raise InstallError(f"CRD {name} is not Established after {within:g}s")
        await asyncio.sleep(0.1)
