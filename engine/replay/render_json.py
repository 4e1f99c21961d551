"""The timeline as one JSON document (sorted keys), for scripts and diffs."""

from __future__ import annotations

import json
from typing import Any

from engine.replay.timeline import StreamTimeline, TimelineRow

FORMAT = "engine-replay"
VERSION = 1


def row_json(row: TimelineRow) -> dict[str, Any]:
    """One row as a JSON object; absent facts are null."""
    return {
        "position": row.position,
        "version": row.version,
        "at": row.at,
        "event": row.event,
        "from": row.source,
        "to": row.dest,
        "trigger": row.trigger,
        "effect": row.effect,
        "key": row.key,
        "attempt": row.attempt,
        "outcome": row.outcome,
        "trace_id": row.trace_id,
    }


def timelines_json(timelines: tuple[StreamTimeline, ...]) -> dict[str, Any]:
    """The whole replay as a JSON-ready mapping."""
    resources = []
    for timeline in timelines:
        resource = timeline.resource
        resources.append(
            {
                "stream": resource.stream,
                "group": resource.group,
                "kind": resource.kind,
                "namespace": resource.namespace,
                "name": resource.name,
                "uid": resource.uid,
                "state": timeline.state.state,
                "generation": timeline.state.generation,
                "records": timeline.records,
                "rows": [row_json(row) for row in timeline.rows],
            }
        )
    return {"format": FORMAT, "version": VERSION, "resources": resources}


def render_json(timelines: tuple[StreamTimeline, ...]) -> str:
    """The replay as indented JSON text with sorted keys and a final newline."""
    text = json.dumps(timelines_json(timelines), sort_keys=True, indent=1, ensure_ascii=False)
    return text + "\n"
