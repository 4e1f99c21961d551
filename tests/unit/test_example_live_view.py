"""The live view of `engine run`: ages, table rows, plain change lines."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime

import pytest
from rich.console import Console

from engine.cli.live_view import ViewRow, age_text, plain_changes, render_table, show
from engine.cli.view_rows import ChangedRows
from engine.runtime.reconcile.progress_views import ResourceViews


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(59.9, "59s", id="seconds"),
        pytest.param(190, "3m10s", id="minutes"),
        pytest.param(7500, "2h5m", id="hours"),
        pytest.param(4 * 86400 + 3 * 3600 + 5, "4d3h", id="days"),
        pytest.param(-5, "0s", id="clock-skew"),
    ],
)
def test_age_is_written_like_kubectl(seconds: float, text: str) -> None:
    assert age_text(seconds) == text


def row(name: str, state: str, *, generation: int = 1, last: str = "TransitionTaken") -> ViewRow:
    return ViewRow("default", name, state, generation, last, created_at=100.0)


def test_table_lists_every_resource_sorted_with_age() -> None:
    console = Console(file=io.StringIO(), width=120, force_terminal=False)
    console.print(render_table([row("shop", "Ready"), row("blog", "Failed")], now=130, title="t"))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert text.index("blog") < text.index("shop")
    assert "Failed" in text
    assert "30s" in text


def test_plain_lines_name_only_what_changed_and_what_went() -> None:
    before = {
        r.key: r for r in (row("blog", "Provisioning"), row("shop", "Ready"), row("old", "Ready"))
    }
    now = [row("blog", "Ready"), row("shop", "Ready"), row("new", "Pending")]
    assert plain_changes(before, now) == [
        "default/blog Ready generation=1 last=TransitionTaken",
        "default/new Pending generation=1 last=TransitionTaken",
        "default/old gone",
    ]


async def test_plain_view_prints_changes_until_stopped() -> None:
    states = iter(["Provisioning", "Provisioning", "Ready"])
    latest = ["Pending"]
    stop = asyncio.Event()

    def snapshot() -> list[ViewRow]:
        latest[0] = next(states, latest[0])
        if latest[0] == "Ready":
            stop.set()
        return [row("blog", latest[0])]

    out = io.StringIO()
    await show(
        snapshot,
        stop=stop,
        console=Console(file=out, force_terminal=False),
        title="t",
        interval=0.01,
    )
    assert out.getvalue().splitlines() == [
        "default/blog Provisioning generation=1 last=TransitionTaken",
        "default/blog Ready generation=1 last=TransitionTaken",
    ]


def test_views_changed_since_a_serial_are_only_those_written_after_it() -> None:
    views = ResourceViews()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for name in ("shop", "blog", "news"):
        views.note(f"default/{name}", _obj(name), event="Observed added", at=at)
    serial, first = views.changed_since(0)
    assert [v.name for v in first] == ["blog", "news", "shop"]  # every view, sorted
    views.set_state("default/shop", "Ready")
    views.set_state("default/blog", "Pending")  # unchanged: not a change
    later, changed = views.changed_since(serial)
    assert [(v.name, v.state) for v in changed] == [("shop", "Ready")]
    assert views.changed_since(later) == (later, ())


async def test_plain_view_fed_by_changes_prints_each_change_once() -> None:
    views = ResourceViews()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    stop = asyncio.Event()
    changes = ChangedRows(views.changed_since)
    steps = iter(["Provisioning", None, "Ready"])

    def changed() -> list[ViewRow]:
        state = next(steps, "stop")
        if state == "stop":
            stop.set()
        elif state is not None:
            views.note("default/blog", _obj("blog"), event=f"to {state}", at=at, state=state)
        return changes()

    out = io.StringIO()
    await show(
        lambda: [],
        stop=stop,
        console=Console(file=out, force_terminal=False),
        title="t",
        interval=0.01,
        changes=changed,
    )
    assert out.getvalue().splitlines() == [
        "default/blog Provisioning generation=1 last=to Provisioning",
        "default/blog Ready generation=1 last=to Ready",
    ]


def _obj(name: str) -> dict[str, object]:
    return {"metadata": {"namespace": "default", "name": name, "uid": f"u-{name}", "generation": 1}}
