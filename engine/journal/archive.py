"""Archive segments: compacted journal history as gzip-compressed JSON lines.

A segment is written once, beside its journal (`journal.db.archive-000001.jsonl.gz`,
mode 0600): a header line, then one record per line in position order, each with its
position and checksum (the `engine journal export` line shape), so the chain can be
verified across the cut. Written to a temporary name, fsynced, then renamed.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from engine.journal.codec import Row, encode_json
from engine.journal.errors import JournalUnavailable
from engine.journal.files import sync_directory

FORMAT = "engine-journal-archive"
VERSION = 1
SUFFIX = ".jsonl.gz"


def segment_path(journal: Path, number: int) -> Path:
    """The file of segment `number` of the journal at `journal`."""
    return journal.with_name(f"{journal.name}.archive-{number:06d}{SUFFIX}")


def next_segment(journal: Path, names: Iterable[str]) -> Path:
    """A new segment's file: after every segment recorded in `names` and on disk."""
    prefix = f"{journal.name}.archive-"
    taken = set(names) | {p.name for p in journal.parent.glob(prefix + "*")}
    numbers = [
        int(n[len(prefix) : len(prefix) + 6]) for n in taken if n[len(prefix) :][:6].isdigit()
    ]
    return segment_path(journal, max(numbers, default=0) + 1)


def _line(row: Row) -> bytes:
    obj = {
        "position": row.position,
        "stream": row.stream,
        "stream_version": row.stream_version,
        "type": row.type,
        "schema": row.schema,
        "at": row.at,
        "data": json.loads(row.data),
        "idempotency_key": row.idempotency_key,
        "trace_id": row.trace_id,
        "span_id": row.span_id,
        "term": row.term,
        "checksum": row.checksum,
    }
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def write_segment(path: Path, rows: Iterable[Row], *, journal: str) -> tuple[int, Row | None]:
    """Write `rows` (position order) as the segment `path`; return the count and the last.

    Durable on return (file and directory fsynced). Errors: `JournalUnavailable` when
    the file cannot be written (the partial file is removed).
    """
    temporary = path.with_name(path.name + ".partial")
    count, last = 0, None
    try:
        fd = os.open(temporary, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
            header = {"format": FORMAT, "version": VERSION, "journal": journal}
            out.write(json.dumps(header).encode() + b"\n")
            for row in rows:
                out.write(_line(row))
                count, last = count + 1, row
            out.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temporary, path)
        sync_directory(path.parent)
    except OSError as bad:
        temporary.unlink(missing_ok=True)
        raise JournalUnavailable(
            f"cannot write the archive segment {path}: {bad.strerror}; free disk space or "
            "fix the directory's permissions"
        ) from None
    return count, last


def _row(obj: dict[str, Any]) -> Row:
    return Row(
        int(obj["position"]),
        str(obj["stream"]),
        int(obj["stream_version"]),
        str(obj["type"]),
        int(obj["schema"]),
        str(obj["at"]),
        encode_json(obj["data"]),
        obj["idempotency_key"],
        obj["trace_id"],
        obj["span_id"],
        int(obj["term"]),
        str(obj["checksum"]),
    )


def read_segment(path: Path) -> Iterator[Row]:
    """The stored rows of the segment `path`, in position order (not yet verified: a
    checksum check needs each row's predecessor, see `chain_check`).

    Errors: `JournalUnavailable` naming the file for a missing, unreadable or foreign
    file, or a line that is not an archived record.
    """
    try:
        with gzip.open(path, "rb") as lines:
            header = orjson.loads(lines.readline() or b"null")
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise JournalUnavailable(
                    f"{path} is not a journal archive segment (no {FORMAT} header line): "
                    "pass a segment written by `engine journal compact`"
                )
            if int(header.get("version", 0)) > VERSION:
                raise JournalUnavailable(f"{path} comes from a newer engine: read it with that")
            for number, line in enumerate(lines, start=2):
                try:
                    yield _row(json.loads(line))
                except (KeyError, TypeError, ValueError) as bad:
                    raise JournalUnavailable(
                        f"{path} line {number} is not an archived record ({bad}): "
                        "restore the segment from a backup"
                    ) from None
    except (OSError, EOFError, orjson.JSONDecodeError) as bad:
        reason = getattr(bad, "strerror", None) or str(bad)
        raise JournalUnavailable(
            f"cannot read the archive segment {path} ({reason}): check the path, or restore "
            "it from a backup"
        ) from None
