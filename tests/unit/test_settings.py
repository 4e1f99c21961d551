"""Settings: defaults written once, precedence file < env < flags, one clear error per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.runtime.manager.settings import Settings, SettingsError, env_name, load_settings
from engine.runtime.manager.settings_docs import defaults_toml, settings_table

ROOT = Path(__file__).resolve().parents[2]


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "engine.toml"
    path.write_text(text)
    return path


def test_no_sources_give_the_declared_defaults() -> None:
    settings = load_settings(env={}, overrides={})
    assert settings == Settings()
    assert settings.qps == 10.0
    assert settings.burst == 100
    assert settings.backoff_base_seconds == 0.005
    assert settings.namespaces == ()


def test_shipped_config_file_is_the_rendered_defaults() -> None:
    shipped = ROOT / "config" / "engine.toml"
    assert shipped.read_text() == defaults_toml(), (
        "config/engine.toml is stale: "
        "python -m engine.runtime.manager.settings_docs > config/engine.toml"
    )
    assert load_settings(config_path=shipped, env={}, overrides={}) == Settings()


def test_docs_hold_the_rendered_settings_table() -> None:
    docs = (ROOT / "docs" / "runtime-parts.md").read_text()
    assert settings_table() in docs, "docs/runtime-parts.md: paste settings_table() output"


def test_every_setting_is_in_the_config_file_and_has_an_env_var() -> None:
    text = defaults_toml()
    for name in Settings.__dataclass_fields__:
        assert f"\n{name} = " in text
        assert env_name(name) in text


def test_later_sources_win(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "qps = 1.0\nburst = 7\nlog_format = 'json'\nresync_seconds = 9\n")
    env = {"ENGINE_BURST": "8", "ENGINE_LOG_FORMAT": "text", "ENGINE_DEBUG": "1"}
    settings = load_settings(
        config_path=config, env=env, overrides={"log_format": "json", "qps": None}
    )
    assert settings.qps == 1.0  # file; the unset flag (None) does not override
    assert settings.burst == 8  # env beats file
    assert settings.log_format == "json"  # flag beats env
    assert settings.resync_seconds == 9.0  # an integer is a fine number


@pytest.mark.parametrize(
    ("variable", "text", "name", "value"),
    [
        pytest.param("ENGINE_IN_CLUSTER", "true", "in_cluster", True, id="bool-true"),
        pytest.param("ENGINE_LEADER_ELECTION", "0", "leader_election", False, id="bool-zero"),
        pytest.param("ENGINE_MAX_CONCURRENT_RECONCILES", "16", "max_concurrent_reconciles", 16,
                     id="int"),
        pytest.param("ENGINE_QPS", " 2.5 ", "qps", 2.5, id="float-stripped"),
        pytest.param("ENGINE_NAMESPACES", "a, b,,c", "namespaces", ("a", "b", "c"), id="list"),
        pytest.param("ENGINE_NAMESPACES", "", "namespaces", (), id="empty-list-means-all"),
        pytest.param("ENGINE_KUBECONFIG", "/k/config", "kubeconfig", Path("/k/config"), id="path"),
        pytest.param("ENGINE_KUBECONFIG", "", "kubeconfig", None, id="empty-path-is-none"),
        pytest.param("ENGINE_STATE_DIR", "/var/lib/engine", "state_dir", Path("/var/lib/engine"),
                     id="state-dir"),
        pytest.param("ENGINE_JOURNAL_SYNCHRONOUS", "NORMAL", "journal_synchronous", "NORMAL",
                     id="choice"),
        pytest.param("ENGINE_STUCK_DEADLINES", "Pending=5, Ready=7.5", "stuck_deadlines",
                     {"Pending": 5.0, "Ready": 7.5}, id="table"),
        pytest.param("ENGINE_HEALTH_PORT", "0", "health_port", 0, id="port-zero"),
    ],
)  # fmt: skip
def test_environment_values_are_parsed_to_the_setting_type(
    variable: str, text: str, name: str, value: object
) -> None:
    settings = load_settings(env={variable: text}, overrides={})
    assert getattr(settings, name) == value


def test_toml_tables_and_lists_load(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        'namespaces = ["team-a"]\nredact_fields = ["spec.password"]\n'
        "[stuck_deadlines]\nProvisioning = 30\n",
    )
    settings = load_settings(config_path=config, env={}, overrides={})
    assert settings.namespaces == ("team-a",)
    assert settings.redact_fields == ("spec.password",)
    assert dict(settings.stuck_deadlines) == {"Provisioning": 30.0}


def test_settings_are_immutable() -> None:
    settings = load_settings(env={"ENGINE_STUCK_DEADLINES": "Pending=5"}, overrides={})
    with pytest.raises(AttributeError):
        settings.qps = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.stuck_deadlines["Pending"] = 1.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("toml", "env", "overrides", "fragments"),
    [
        pytest.param("qps = 1\nspeed = 3\n", {}, {}, ["unknown setting 'speed'", "engine.toml"],
                     id="toml-unknown-key"),
        pytest.param("qps = 'fast'\n", {}, {}, ["'qps'", "engine.toml", "a number > 0", "'fast'"],
                     id="toml-string-for-number"),
        pytest.param("in_cluster = 1\n", {}, {}, ["'in_cluster'", "true or false"],
                     id="toml-int-for-bool"),
        pytest.param("burst = 2.5\n", {}, {}, ["'burst'", "an integer >= 1"],
                     id="toml-float-for-int"),
        pytest.param("namespaces = 'a'\n", {}, {}, ["'namespaces'", "a list of strings"],
                     id="toml-string-for-list"),
        pytest.param("qps = [\n", {}, {}, ["not valid TOML", "engine.toml"], id="toml-syntax"),
        pytest.param("", {"ENGINE_IN_CLUSTER": "maybe"}, {},
                     ["'in_cluster'", "environment ENGINE_IN_CLUSTER", "true or false", "'maybe'"],
                     id="env-bad-bool"),
        pytest.param("", {"ENGINE_QPS": "ten"}, {}, ["'qps'", "ENGINE_QPS", "a number > 0"],
                     id="env-not-a-number"),
        pytest.param("", {"ENGINE_QPS": "0"}, {}, ["'qps'", "a number > 0", "'0'"],
                     id="env-zero-qps"),
        pytest.param("", {"ENGINE_BURST": "-1"}, {}, ["'burst'", "an integer >= 1"],
                     id="env-negative-burst"),
        pytest.param("", {"ENGINE_HEALTH_PORT": "70000"}, {}, ["'health_port'", "0 to 65535"],
                     id="env-port-out-of-range"),
        pytest.param("", {"ENGINE_LOG_FORMAT": "xml"}, {}, ["'log_format'", "'text', 'json'"],
                     id="env-bad-choice"),
        pytest.param("", {"ENGINE_STUCK_DEADLINES": "Pending=soon"}, {},
                     ["'stuck_deadlines'", "STATE=SECONDS"], id="env-bad-table"),
        pytest.param("", {"ENGINE_STUCK_DEADLINES": "Pending=-4"}, {},
                     ["'stuck_deadlines'"], id="env-negative-deadline"),
        pytest.param("", {}, {"workers": 3}, ["unknown setting 'workers'", "command line"],
                     id="flag-unknown"),
        pytest.param("", {}, {"burst": "lots"}, ["'burst'", "the command line", "an integer"],
                     id="flag-bad-text"),
        pytest.param("", {}, {"qps": True}, ["'qps'", "a number"], id="flag-bool-for-number"),
        pytest.param("", {"ENGINE_BACKOFF_BASE_SECONDS": "10", "ENGINE_BACKOFF_CAP_SECONDS": "1"},
                     {}, ["'backoff_base_seconds'", "'backoff_cap_seconds'"],
                     id="base-above-cap"),
        pytest.param("", {"ENGINE_LEASE_RENEW_DEADLINE_SECONDS": "20"}, {},
                     ["'lease_renew_deadline_seconds'", "'lease_duration_seconds'"],
                     id="renew-deadline-past-lease"),
        pytest.param("kubeconfig = '/k'\n", {}, {"in_cluster": True},
                     ["'in_cluster'", "'kubeconfig'"], id="in-cluster-and-kubeconfig"),
    ],
)  # fmt: skip
def test_bad_values_raise_one_clear_error(
    tmp_path: Path,
    toml: str,
    env: dict[str, str],
    overrides: dict[str, object],
    fragments: list[str],
) -> None:
    config = write_toml(tmp_path, toml)
    with pytest.raises(SettingsError) as caught:
        load_settings(config_path=config, env=env, overrides=overrides)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError, match=r"cannot read config file .*nope\.toml"):
        load_settings(config_path=missing, env={}, overrides={})
