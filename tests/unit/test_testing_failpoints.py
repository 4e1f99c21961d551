"""The test kit's failpoints: every failpoint the engine declares is known to the kit,
unknown names and actions are refused, and an armed `raise` fires where it is placed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.failpoint import FailpointError, FailpointTriggered, failpoint
from engine.testing import KNOWN_FAILPOINTS, arm_failpoints, failpoint_env

ENGINE = Path(__file__).resolve().parents[2] / "engine"


def test_the_kit_knows_every_failpoint_the_engine_declares() -> None:
    declared = set()
    for path in ENGINE.rglob("*.py"):
        declared.update(re.findall(r'\bafailpoint\("([a-z_.]+)"[,)]|\bfailpoint\("([a-z_.]+)"[,)]',
                                   path.read_text()))  # fmt: skip
    names = {a or b for a, b in declared}
    assert names == set(KNOWN_FAILPOINTS)


def test_an_armed_raise_fires_only_inside_the_block() -> None:
    with arm_failpoints(**{"effect.after_send": "raise"}), pytest.raises(FailpointTriggered):
        failpoint("effect.after_send")
    failpoint("effect.after_send")  # disarmed again: nothing happens


@pytest.mark.parametrize(
    ("actions", "needle"),
    [
        pytest.param({"effect.sent": "raise"}, "unknown failpoint 'effect.sent'", id="name"),
        pytest.param({"effect.after_send": "explode"}, "explode", id="action"),
    ],
)
def test_unknown_failpoints_and_actions_are_refused(actions: dict[str, str], needle: str) -> None:
    with pytest.raises(FailpointError, match=needle):
        failpoint_env(**actions)


def test_the_subprocess_environment_arms_what_it_names() -> None:
    env = failpoint_env(**{"effect.after_send": "kill", "journal.before_commit": "sleep(0.5)"})
    assert env == {"ENGINE_FAILPOINTS": "effect.after_send=kill;journal.before_commit=sleep(0.5)"}


def test_the_plugin_is_registered_and_offers_its_fixtures(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("engine")
    assert plugin is not None
    assert plugin.__name__ == "engine.testing.plugin"
    for fixture in ("engine_cluster", "engine_runner", "engine_handlers", "engine_clock"):
        assert hasattr(plugin, fixture), fixture
