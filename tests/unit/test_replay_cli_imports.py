"""`engine replay` imports only what a table or JSON replay needs: the live loop, the
Kubernetes client, the API server, the progress bar and the timeline page load only
for the options that use them (a one-resource replay starts in a fraction of a second)."""

from __future__ import annotations

import subprocess
import sys

from engine.cli.replay_cmd import BACKOFF_BASE, BACKOFF_CAP
from engine.effects.backoff import DEFAULT_BACKOFF

NOT_FOR_A_PLAIN_REPLAY = (
    "asyncio",
    "rich",
    "transitions",
    "aiohttp",
    "kubernetes_asyncio",
    "engine.runtime",
    "engine.apiserver",
    "engine.effects",
    "engine.ui",
    "engine.replay.verify",
    "engine.journal.sqlite",
    "engine.journal.archive_index",
)


def test_a_plain_replay_imports_none_of_the_other_commands_modules() -> None:
    probe = (
        "import sys\n"
        "from engine.cli.main import cli\n"
        "cli.get_command(None, 'replay')\n"
        "import engine.replay.driver, engine.replay.render_json, engine.replay.render_table\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert "engine.cli.replay_cmd" in loaded
    heavy = [
        m
        for m in loaded
        if m.split(".")[0] in NOT_FOR_A_PLAIN_REPLAY
        or any(m == name or m.startswith(name + ".") for name in NOT_FOR_A_PLAIN_REPLAY)
    ]
    assert heavy == []


def test_the_replay_backoff_defaults_are_the_engines() -> None:
    assert (DEFAULT_BACKOFF.base, DEFAULT_BACKOFF.cap) == (BACKOFF_BASE, BACKOFF_CAP)
