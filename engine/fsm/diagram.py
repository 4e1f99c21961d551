"""The state machine as a diagram (Mermaid or Graphviz dot), generated from the table."""

from __future__ import annotations

from engine.fsm.table import FINAL_STATES, INITIAL_STATE, STATES, TRANSITIONS

FORMATS = ("mermaid", "dot")


def _edges() -> list[tuple[str, str, str]]:
    """(source, dest, "trigger, trigger") in table order, one per (source, dest) pair."""
    labels: dict[tuple[str, str], list[str]] = {}
    for row in TRANSITIONS:
        labels.setdefault((row.source, row.dest), []).append(row.trigger)
    return [(source, dest, ", ".join(names)) for (source, dest), names in labels.items()]


def mermaid() -> str:
    """A Mermaid `stateDiagram-v2` of the table."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL_STATE}"]
    lines += [f"    {source} --> {dest}: {label}" for source, dest, label in _edges()]
    lines += [f"    {state} --> [*]" for state in FINAL_STATES]
    return "\n".join(lines) + "\n"


def dot() -> str:
    """A Graphviz digraph of the table."""
    lines = ["digraph lifecycle {", "    rankdir=LR;", '    node [shape=box, style="rounded"];']
    for state in STATES:
        shape = " [peripheries=2]" if state in FINAL_STATES else ""
        lines.append(f'    "{state}"{shape};')
    lines.append("    start [shape=point];")
    lines.append(f'    start -> "{INITIAL_STATE}";')
    lines += [f'    "{s}" -> "{d}" [label="{label}"];' for s, d, label in _edges()]
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(fmt: str) -> str:
    """The diagram in `fmt` (one of `FORMATS`). Errors: `ValueError` for another format."""
    if fmt == "mermaid":
        return mermaid()
    if fmt == "dot":
        return dot()
    raise ValueError(f"unknown diagram format {fmt!r}: use one of {', '.join(FORMATS)}")
