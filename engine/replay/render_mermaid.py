"""The path each resource actually took, as a Mermaid state diagram.

Each edge is one (from, trigger, to) the journal recorded, labelled with the trigger and
the step numbers at which it was taken. Several resources become composite states.
"""

from __future__ import annotations

from engine.replay.timeline import StreamTimeline


def _path_lines(timeline: StreamTimeline, *, prefix: str, indent: str) -> list[str]:
    edges: dict[tuple[str, str, str], list[int]] = {}
    first: str | None = None
    last: str | None = None
    step = 0
    for row in timeline.rows:
        if row.trigger is None:
            continue
        step += 1
        first = first or row.source
        last = row.dest
        edges.setdefault((row.source, row.dest, row.trigger), []).append(step)
    lines: list[str] = []
    if first is None:
        state = timeline.state.state
        return [f"{indent}[*] --> {prefix}{state}", _name_line(indent, prefix, state)]
    names = sorted({s for edge in edges for s in edge[:2]})
    lines += [_name_line(indent, prefix, name) for name in names if prefix]
    lines.append(f"{indent}[*] --> {prefix}{first}")
    for (source, dest, trigger), steps in edges.items():
        numbers = ",".join(str(n) for n in steps)
        lines.append(f"{indent}{prefix}{source} --> {prefix}{dest}: {numbers} {trigger}")
    if last == "Deleted":
        lines.append(f"{indent}{prefix}{last} --> [*]")
    return [line for line in lines if line]


def _name_line(indent: str, prefix: str, state: str) -> str:
    return f'{indent}state "{state}" as {prefix}{state}' if prefix else ""


def render_mermaid(timelines: tuple[StreamTimeline, ...]) -> str:
    """A `stateDiagram-v2` of the transitions taken (all resources in one diagram)."""
    lines = ["stateDiagram-v2"]
    if len(timelines) == 1:
        lines += _path_lines(timelines[0], prefix="", indent="    ")
        return "\n".join(lines) + "\n"
    for number, timeline in enumerate(timelines, start=1):
        prefix = f"r{number}_"
        label = timeline.resource.label.replace('"', "'")
        lines.append(f'    state "{label} ({timeline.state.state})" as r{number} {{')
        lines += _path_lines(timeline, prefix=prefix, indent="        ")
        lines.append("    }")
    return "\n".join(lines) + "\n"
