"""`engine journal versions`: which handler code versions a journal's live resources
still run, and what each `ctx.patched` change answered, so an operator author knows
when an old path can go (`ctx.deprecate_patch`: once no old-path run is in flight).

Read stream by stream (`StreamHistory`: verified, memory of one stream at a time);
Deleted resources are left out (no work of theirs can resume).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.fsm.fold import apply
from engine.fsm.key import FINALIZE, PROVISION
from engine.fsm.state import FAILED_OUTCOME, PENDING_OUTCOME, ResourceState
from engine.fsm.table import DELETED
from engine.journal.record import Record
from engine.replay.driver import StreamHistory
from engine.replay.recording import is_external
from engine.replay.timeline import ResourceId
from engine.runtime.reconcile.code_version import CODE_VERSION_FIELD
from engine.runtime.reconcile.patches import PATCH_MARKER, marker_facts, run_started_by

NONE_RECORDED = ""
"""The version of records written before records carried one."""


@dataclass(frozen=True, slots=True)
class ResourceVersion:
    """One live resource: the version that wrote its newest record, the handler runs in
    flight (not finished: started, or failed and to be retried) with the version each
    began under, and the answer of each patch change in its newest run that asked."""

    label: str
    stream: str
    state: str
    written_by: str
    in_flight: tuple[tuple[str, str], ...]
    patches: tuple[tuple[str, bool], ...]


@dataclass(slots=True)
class VersionsReport:
    """Every live resource's `ResourceVersion`, and the tallies the command prints."""

    resources: list[ResourceVersion] = field(default_factory=list)

    def by_version(self) -> dict[str, dict[str, list[str]]]:
        """version → {"resources": labels written last by it, "in_flight": labels with
        a run that began under it still open}."""
        rows: dict[str, dict[str, list[str]]] = {}
        for resource in self.resources:
            row = rows.setdefault(resource.written_by, {"resources": [], "in_flight": []})
            row["resources"].append(resource.label)
            for _, version in resource.in_flight:
                started = rows.setdefault(version, {"resources": [], "in_flight": []})
                if resource.label not in started["in_flight"]:
                    started["in_flight"].append(resource.label)
        return rows

    def by_patch(self) -> dict[str, dict[str, list[str]]]:
        """change → {"new": labels whose newest marker says True, "old": False,
        "old_in_flight": False and a run still open (what keeps the old path alive)}."""
        rows: dict[str, dict[str, list[str]]] = {}
        for resource in self.resources:
            for change, patched in resource.patches:
                row = rows.setdefault(change, {"new": [], "old": [], "old_in_flight": []})
                row["new" if patched else "old"].append(resource.label)
                if not patched and resource.in_flight:
                    row["old_in_flight"].append(resource.label)
        return rows

    def as_json(self) -> dict[str, Any]:
        return {
            "format": "engine-journal-versions",
            "version": 1,
            "versions": self.by_version(),
            "patches": self.by_patch(),
            "resources": [
                {
                    "resource": r.label,
                    "stream": r.stream,
                    "state": r.state,
                    "written_by": r.written_by,
                    "in_flight": [{"run": run, "started_by": v} for run, v in r.in_flight],
                    "patches": dict(r.patches),
                }
                for r in self.resources
            ],
        }


def journal_versions(path: Path, *, archive: Sequence[Path] = ()) -> VersionsReport:
    """The versions report of the journal at `path` (read-only, verified).

    Errors: `JournalError` for the file, `FoldError` for a record that cannot be folded.
    """
    report = VersionsReport()
    with StreamHistory(path, archive=archive) as history:
        for stream in history.streams():
            records, state = history.records(stream)
            for record in records:
                state = apply(state, record)
            if state.state == DELETED:
                continue
            report.resources.append(resource_version(stream, records, state))
    return report


def resource_version(stream: str, records: list[Record], state: ResourceState) -> ResourceVersion:
    """One stream's `ResourceVersion` from its records and folded state."""
    written = [r for r in records if not is_external(r)]
    newest = str(written[-1].data.get(CODE_VERSION_FIELD) or "") if written else NONE_RECORDED
    open_runs = [
        effect.key
        for effect in state.effects
        if effect.name in (PROVISION, FINALIZE)
        and (
            effect.outcome == PENDING_OUTCOME
            or (effect.outcome == FAILED_OUTCOME and not effect.is_permanent_failure)
        )
    ]
    in_flight = tuple((run, run_started_by(records, run) or NONE_RECORDED) for run in open_runs)
    return ResourceVersion(
        label=ResourceId.of(stream).label,
        stream=stream,
        state=state.state,
        written_by=newest,
        in_flight=in_flight,
        patches=_newest_answers(records),
    )


def _newest_answers(records: Iterable[Record]) -> tuple[tuple[str, bool], ...]:
    answers: dict[str, bool] = {}
    for record in records:
        if record.type == PATCH_MARKER:
            change, patched = marker_facts(record.data)
            answers[change] = patched
    return tuple(sorted(answers.items()))
