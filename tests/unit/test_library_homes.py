"""Each library has one home. import-linter cannot name subpackages of an
external package, so the OpenTelemetry SDK rule is checked here by reading the source."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"
SDK_HOME = ENGINE / "telemetry" / "setup.py"
SDK_PREFIXES = ("opentelemetry.sdk", "opentelemetry.exporter")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_opentelemetry_sdk_is_imported_only_by_the_telemetry_setup() -> None:
    offenders = [
        f"{path.relative_to(ENGINE.parent)} imports {name}"
        for path in ENGINE.rglob("*.py")
        if path != SDK_HOME
        for name in imported_modules(path)
        if name.startswith(SDK_PREFIXES)
    ]
    assert offenders == []
