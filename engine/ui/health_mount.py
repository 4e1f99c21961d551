"""The timeline on the engine's health port: off by default; when its setting is on,
the health server mounts `timeline_app` read-only under `/timeline/`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from engine.ui.routes import timeline_app

PREFIX = "/timeline"
ENV = "ENGINE_HEALTH_TIMELINE"


@dataclass(frozen=True, slots=True)
class TimelineSetting:
    """Whether the health server serves the timeline (`health_timeline`, default off)."""

    enabled: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TimelineSetting:
        """`ENGINE_HEALTH_TIMELINE` = 1/true/yes/on turns it on; 0/false/no/off or unset
        keeps it off. Errors: `ValueError` naming the variable for any other value."""
        text = env.get(ENV, "").strip().lower()
        if text in ("", "0", "false", "no", "off"):
            return cls(False)
        if text in ("1", "true", "yes", "on"):
            return cls(True)
        raise ValueError(f"{ENV}={text!r}: use true or false")


def mount_timeline(
    app: web.Application, journal: Path, *, jaeger_url: str | None = None
) -> web.Application:
    """Mount the live timeline of `journal` under `/timeline/` of `app` (before `app`
    starts); the page is then at `/timeline/`. Returns the mounted sub-application."""
    sub = timeline_app(journal, jaeger_url=jaeger_url)
    app.add_subapp(PREFIX, sub)
    return sub
