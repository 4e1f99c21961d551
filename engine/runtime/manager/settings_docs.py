"""Render the settings' defaults as config/engine.toml and as the docs table.

Both come from the declarations in engine/runtime/manager/settings.py; tests check that the
shipped file and docs/runtime-parts.md match what these functions produce.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from engine.runtime.manager.settings import FIELDS, Settings, env_name, expected


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return '""'
    if isinstance(value, tuple):
        return "[" + ", ".join(json.dumps(item) for item in value) + "]"
    if isinstance(value, Mapping):
        pairs = ", ".join(f"{key} = {_toml_value(seconds)}" for key, seconds in value.items())
        return "{ " + pairs + " }"
    return json.dumps(str(value))


def defaults_toml() -> str:
    """The text of config/engine.toml: every setting at its default, with its meaning."""
    lines = [
        "# The engine's settings, each at its default (generated from",
        "# engine/runtime/manager/settings.py; regenerate with",
        "# `python -m engine.runtime.manager.settings_docs > config/engine.toml`).",
        "# Later sources win: this file < ENGINE_<NAME> environment variables < CLI flags.",
    ]
    defaults = Settings()
    for name, spec in FIELDS.items():
        lines.append("")
        lines.append(f"# {spec.metadata['meaning']}; {expected(name)}; env {env_name(name)}")
        lines.append(f"{name} = {_toml_value(getattr(defaults, name))}")
    return "\n".join(lines) + "\n"


def settings_table() -> str:
    """The Markdown table of every setting: name, default, environment variable, meaning."""
    defaults = Settings()
    rows = ["| setting | default | environment | meaning |", "| --- | --- | --- | --- |"]
    for name, spec in FIELDS.items():
        default = _toml_value(getattr(defaults, name)).replace("|", "\\|")
        meaning = f"{spec.metadata['meaning']} ({expected(name)})"
        rows.append(f"| `{name}` | `{default}` | `{env_name(name)}` | {meaning} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(defaults_toml(), end="")
