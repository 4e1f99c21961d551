"""The timeline over real HTTP on 127.0.0.1: mounted on the engine's health application
(read-only, under /timeline/) beside /healthz, its page, one record, and its event
stream carrying records a writer appends to the SQLite journal while it is served; a
secret field's value reaches neither the page nor the stream."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from engine.fsm import events as ev
from engine.fsm.observation import Observation
from engine.journal.errors import JournalError
from engine.journal.sqlite import SqliteJournal
from engine.runtime.manager.health import HealthDependencies, build_health_app
from engine.ui.health_mount import TimelineSetting, mount_timeline
from engine.ui.routes import timeline_app

CANARY = f"canary{uuid.uuid4().hex[:12]}"
SECRET = ("spec.password",)


def observed(name: str) -> ev.NewEvent:
    observation = Observation(
        uid=f"uid-{name}", generation=1, resource_version="1", spec_digest="0" * 64,
        exists=True, deletion_requested=False, has_finalizer=False, child_drift=False,
    )  # fmt: skip
    spec = {"domain": f"{name}.example.com", "password": CANARY}
    return ev.observed(observation, watch_event="ADDED", spec=spec)


def stream(name: str) -> str:
    return f"example.dev/Site/default/{name}#uid-{name}"


@asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[SqliteJournal]:
    journal = await SqliteJournal.open(tmp_path / "journal.db", redact=SECRET)
    await journal.append(stream("blog"), [observed("blog")])
    yield journal
    await journal.close()


def health_app_with_timeline(journal: Path) -> web.Application:
    app = build_health_app(HealthDependencies(registry=CollectorRegistry()))
    mount_timeline(app, journal)
    return app


async def test_the_health_app_serves_the_timeline_page_and_records_beside_healthz(
    writer: SqliteJournal,
) -> None:
    async with (
        served(health_app_with_timeline(writer.path)) as url,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(url + "/healthz") as response:
            assert response.status == 200
        async with http.get(url + "/timeline/") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            page = await response.text()
        assert f'data-id="{stream("blog")}"' in page
        assert CANARY not in page
        async with http.get(url + "/timeline/record/1") as response:
            record = await response.json()
        assert record["stream"] == stream("blog")
        assert record["data"]["spec"]["password"] == "<redacted>"
        async with http.get(url + "/timeline/record/99") as response:
            assert response.status == 404
        async with http.post(url + "/timeline/") as response:
            assert response.status == 405  # read-only


async def test_records_appended_while_served_reach_the_event_stream(
    writer: SqliteJournal,
) -> None:
    app = timeline_app(writer.path, poll_seconds=0.05)
    async with served(app) as url, aiohttp.ClientSession() as http:
        async with http.get(url + "/events?from=1") as events:
            assert events.content_type == "text/event-stream"
            await writer.append(stream("docs"), [observed("docs")])
            lines: list[str] = []
            while not any(line.startswith("data: ") for line in lines):
                lines.append((await events.content.readline()).decode())
        text = "".join(lines)
        assert "id: 2\n" in text
        assert "event: update\n" in text
        update = json.loads(next(line for line in lines if line.startswith("data: "))[6:])
        assert [lane["id"] for lane in update["lanes"]] == [stream("docs")]  # only what changed
        assert update["last_position"] == 2
        assert CANARY not in text
        async with http.get(url + "/") as response:
            page = await response.text()
        assert f'data-id="{stream("docs")}"' in page


async def test_a_missing_journal_fails_the_start_naming_the_file(tmp_path: Path) -> None:
    app = timeline_app(tmp_path / "missing.db")
    runner = web.AppRunner(app)
    with pytest.raises(JournalError, match=r"missing\.db"):
        await runner.setup()
    await runner.cleanup()


@pytest.mark.parametrize(
    ("value", "enabled"),
    [
        pytest.param(None, False, id="unset-off"),
        pytest.param("true", True, id="true"),
        pytest.param("0", False, id="zero"),
    ],
)
def test_the_timeline_setting_is_off_unless_turned_on(value: str | None, enabled: bool) -> None:
    env = {} if value is None else {"ENGINE_HEALTH_TIMELINE": value}
    assert TimelineSetting.from_env(env).enabled is enabled


def test_a_bad_timeline_setting_names_the_variable() -> None:
    with pytest.raises(ValueError, match="ENGINE_HEALTH_TIMELINE"):
        TimelineSetting.from_env({"ENGINE_HEALTH_TIMELINE": "maybe"})
