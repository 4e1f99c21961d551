"""The large fixture of `engine bench restart`, cloned from a small real one.

A few Sites are reconciled by the real engine first (some left with a step in flight);
each clone then copies one of them: its stored objects (the Site and the children it
owns, with new names, uids and resourceVersions) go straight into the stopped API
server's SQLite file, and its journal stream (every record the engine wrote for it, with
the same names, uids and the Site's current resourceVersion substituted) is appended
through the journal's own `append`, so positions, checksums and the chain are the
journal's. What a restarted engine lists then agrees with what its journal holds, as it
does after a real run: a settled clone has nothing to do, an in-flight one resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.journal.offline_reader import OfflineReader
from engine.journal.record import NewEvent
from engine.journal.sqlite import SqliteJournal

SITE_KEY = "example.dev/sites/{namespace}/{name}"
APPEND_CONCURRENCY = 64


class FixtureError(Exception):
    """The template could not be cloned (a template object or stream is missing)."""


@dataclass(frozen=True)
class Template:
    """One real Site: its stored objects (key, uid, body text; the Site first) and its
    journal stream's records as events."""

    name: str
    uid: str
    resource_version: str
    stream: str
    objects: tuple[tuple[str, str, str], ...]
    events: tuple[NewEvent, ...]


@dataclass(frozen=True)
class Clone:
    """A Site to make as a copy of `template`, named `name`."""

    template: Template
    name: str


def read_templates(
    cluster_db: Path, journal: Path, names: Sequence[str], *, namespace: str = "default"
) -> dict[str, Template]:
    """The Sites `names` as stored in the API server's file and the journal (both closed
    or only read). Errors: `FixtureError`."""
    with contextlib.closing(sqlite3.connect(f"file:{cluster_db}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT key, uid, body FROM objects").fetchall()
    sites = {str(key): (str(uid), str(body)) for key, uid, body in rows}
    owned: dict[str, list[tuple[str, str, str]]] = {}
    for key, uid, body in rows:
        for owner in json.loads(body)["metadata"].get("ownerReferences") or ():
            owned.setdefault(str(owner.get("uid")), []).append((str(key), str(uid), str(body)))
    templates: dict[str, Template] = {}
    with OfflineReader.open(journal) as reader:
        streams = reader.streams()
        for name in names:
            key = SITE_KEY.format(namespace=namespace, name=name)
            if key not in sites:
                raise FixtureError(f"the template Site {name} is not stored")
            uid, body = sites[key]
            stream = next((s for s in streams if s.endswith(f"/{namespace}/{name}#{uid}")), None)
            if stream is None:
                raise FixtureError(f"the template Site {name} has no journal stream")
            children = [row for row in owned.get(uid, []) if "/events/" not in row[0]]
            events = tuple(
                NewEvent(
                    type=r.type,
                    data=r.data,
                    schema=r.schema,
                    idempotency_key=r.idempotency_key,
                    trace_id=r.trace_id,
                    span_id=r.span_id,
                )
                for r in reader.read_stream(stream)
            )
            templates[name] = Template(
                name=name,
                uid=uid,
                resource_version=str(json.loads(body)["metadata"]["resourceVersion"]),
                stream=stream,
                objects=((key, uid, body), *children),
                events=events,
            )
    return templates


def _substitute(text: str, renames: Sequence[tuple[str, str]]) -> str:
    for old, new in renames:
        text = text.replace(old, new)
    return text


@dataclass(frozen=True)
class _Made:
    clone: Clone
    renames: tuple[tuple[str, str], ...]
    resource_version: str


def clone_cluster(cluster_db: Path, clones: Sequence[Clone]) -> list[_Made]:
    """Store every clone's objects in the API server's file (the server stopped): new
    uids, each a new revision; the file's revision moves past them (and its change log
    is marked compacted there, so a watch from before is told to relist)."""
    made: list[_Made] = []
    with contextlib.closing(sqlite3.connect(cluster_db)) as db:
        revision = int(db.execute("SELECT revision FROM meta WHERE id = 1").fetchone()[0])
        rows: list[tuple[str, int, str, str]] = []
        for clone in clones:
            template = clone.template
            renames = [(template.name, clone.name)]
            renames += [(uid, str(uuid.uuid4())) for _key, uid, _body in template.objects]
            site_rv = ""
            for key, _uid, body in template.objects:
                revision += 1
                obj = json.loads(_substitute(body, renames))
                obj["metadata"]["resourceVersion"] = str(revision)
                site_rv = site_rv or str(revision)
                rows.append(
                    (_substitute(key, renames), revision, obj["metadata"]["uid"], json.dumps(obj))
                )
            made.append(_Made(clone, tuple(renames), site_rv))
        with db:
            db.executemany("INSERT INTO objects (key, rv, uid, body) VALUES (?, ?, ?, ?)", rows)
            db.execute(
                "UPDATE meta SET revision = ?, compacted = ? WHERE id = 1", (revision, revision)
            )
    return made


def _events_of(made: _Made) -> Iterator[NewEvent]:
    template = made.clone.template
    renames = (
        *made.renames,
        (
            f'"resource_version":"{template.resource_version}"',
            f'"resource_version":"{made.resource_version}"',
        ),
    )
    for event in template.events:
        text = _substitute(json.dumps(event.data, sort_keys=True, separators=(",", ":")), renames)
        key = event.idempotency_key
        yield NewEvent(
            type=event.type,
            data=json.loads(text),
            schema=event.schema,
            idempotency_key=None if key is None else _substitute(key, made.renames),
            trace_id=event.trace_id,
            span_id=event.span_id,
        )


async def clone_journal(journal_path: Path, made: Sequence[_Made]) -> int:
    """Append every clone's stream to the journal at `journal_path` (no engine holds it)
    through the journal's `append`; the records appended."""
    journal = await SqliteJournal.open(journal_path, synchronous="NORMAL")
    pending = iter(made)
    appended = 0

    async def appender() -> None:
        nonlocal appended
        for one in pending:
            stream = _substitute(one.clone.template.stream, one.renames)
            events = list(_events_of(one))
            await journal.append(stream, events, expected_version=0)
            appended += len(events)

    try:
        await asyncio.gather(*(appender() for _ in range(APPEND_CONCURRENCY)))
    finally:
        await journal.close()
    return appended
