"""The live view of `engine run`: ages, table rows, plain change lines."""

from __future__ import annotations

import asyncio
import io

import pytest
from rich.console import Console

from engine.cli.live_view import ViewRow, age_text, plain_changes, render_table, show


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
