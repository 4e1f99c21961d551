"""The raw API ceiling of a reconcile run: the requests the engine made (read back from the
API server's audit log, which records verb and path but no bodies), rebuilt with bodies of
the same shape and issued by one plain aiohttp client at the same concurrency. Child
applies carry the engine's controller ownerReference to the replay server's own Site, so
that server does the same garbage-collection bookkeeping as the engine's.

Watches are not replayed: a watch is one long-lived stream whose cost is in the events it
carries, which the replayed writes cause again on the server's side.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from engine.example.site import config_map, web_service
from engine.runtime.reconcile.steps import child_manifest

MERGE = "application/merge-patch+json"
APPLY = "application/apply-patch+yaml"
JSON = "application/json"
STATUS_PHASES = ("Provisioning", "Ready")


@dataclass(frozen=True)
class Request:
    """One request to replay."""

    method: str
    path: str
    content_type: str = JSON
    body: Mapping[str, Any] | None = None
    query: tuple[tuple[str, str], ...] = ()


def read_audit(path: Path, *, skip: int = 0) -> list[dict[str, Any]]:
    """The audit log's entries after the first `skip` lines."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for index, line in enumerate(lines) if index >= skip]


def _condition(phase: str) -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": "True" if phase == "Ready" else "False",
        "reason": phase,
        "message": phase,
        "lastTransitionTime": "2024-01-01T00:00:00Z",
    }


def _event(namespace: str, name: str, serial: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"ceiling.{serial}", "namespace": namespace},
        "involvedObject": {"kind": "Site", "name": name, "namespace": namespace},
        "reason": "Transition",
        "message": "Provisioning -> Ready (provisioned)",
        "type": "Normal",
        "source": {"component": "engine"},
    }


def replay_plan(
    entries: Sequence[Mapping[str, Any]],
    *,
    finalizer: str,
    spec: Mapping[str, Any],
    owners: Mapping[str, Mapping[str, Any]],
) -> list[Request]:
    """The requests to replay for `entries`, in order (pure).

    Bodies follow the engine's: a finalizer merge patch, status merge patches (Provisioning
    then Ready per object), server-side applies of each child built by the example
    operator from `spec` with the namespace and controller ownerReference (controller and
    blockOwnerDeletion true) the engine sets, pointing at `owners[<Site name>]` (the Site
    as stored on the replay server), and Events. Errors: `ValueError` naming an entry it
    cannot rebuild or a child whose Site is not in `owners`.
    """
    plan: list[Request] = []
    status_writes: Counter[str] = Counter()
    for serial, entry in enumerate(entries):
        verb, path = str(entry["verb"]), str(entry["path"])
        resource, sub = str(entry["resource"]), str(entry["subresource"])
        namespace, name = str(entry["namespace"]), str(entry["name"])
        if verb == "watch":
            continue
        if verb in ("get", "list"):
            plan.append(Request("GET", path))
        elif verb == "delete":
            plan.append(Request("DELETE", path))
        elif verb == "create" and resource == "events":
            plan.append(Request("POST", path, body=_event(namespace, name, serial)))
        elif verb == "patch" and sub == "status":
            phase = STATUS_PHASES[min(status_writes[name], len(STATUS_PHASES) - 1)]
            status_writes[name] += 1
            body = {"status": {"phase": phase, "observedGeneration": 1,
                               "conditions": [_condition(phase)]}}  # fmt: skip
            plan.append(Request("PATCH", path, MERGE, body))
        elif verb == "patch" and resource == "configmaps":
            site = name.removesuffix("-config")
            manifest = child_manifest(config_map(site, spec), _owner(owners, site, path))
            plan.append(Request("PATCH", path, APPLY, manifest, _APPLY_QUERY))
        elif verb == "patch" and resource == "services":
            site = name.removesuffix("-web")
            manifest = child_manifest(web_service(site), _owner(owners, site, path))
            plan.append(Request("PATCH", path, APPLY, manifest, _APPLY_QUERY))
        elif verb == "patch":
            body = {"metadata": {"finalizers": [finalizer]}}
            plan.append(Request("PATCH", path, MERGE, body))
        else:
            raise ValueError(f"cannot rebuild audit entry {verb} {path} for the ceiling")
    return plan


_APPLY_QUERY = (("fieldManager", "engine"), ("force", "true"))


def _owner(owners: Mapping[str, Mapping[str, Any]], site: str, path: str) -> Mapping[str, Any]:
    if site not in owners:
        raise ValueError(f"cannot rebuild {path} for the ceiling: no Site {site!r} to own it")
    return owners[site]


async def replay(base_url: str, plan: Sequence[Request], *, concurrency: int) -> float:
    """Issue `plan` in order with at most `concurrency` requests in flight; seconds taken.

    Errors: `RuntimeError` naming the first request answered with a 5xx.
    """
    queue: asyncio.Queue[Request] = asyncio.Queue()
    for request in plan:
        queue.put_nowait(request)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url, connector=connector) as session:

        async def worker() -> None:
            while not queue.empty():
                request = queue.get_nowait()
                data = None if request.body is None else json.dumps(request.body)
                headers = {"Content-Type": request.content_type, "Accept": JSON}
                async with session.request(
                    request.method, request.path, data=data, headers=headers,
                    params=list(request.query),
                ) as response:  # fmt: skip
                    await response.read()
                    if response.status >= 500:
                        raise RuntimeError(
                            f"{request.method} {request.path}: {response.status} in the replay"
                        )

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started
