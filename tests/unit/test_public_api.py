"""The public API at the top of the package: exactly the names an operator needs, loaded
on first use (so `import engine` stays cheap), and the live view's printer columns."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import engine
from engine.cli import live_view, printer_columns
from engine.cli.view_rows import view_rows

PUBLIC = ["AdmissionRequest", "ChildKind", "Context", "CustomResource", "Operator",
          "PermanentError", "Rejected", "RetryableError", "ServedVersion", "Settings",
          "UserInfo", "__version__", "load_settings", "run"]  # fmt: skip


def modules_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    return [m for m in json.loads(done.stdout) if m == "engine" or m.startswith("engine.")]


def test_the_package_exports_exactly_the_public_names() -> None:
    assert sorted(engine.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(engine, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Controller'"):
        _ = engine.Controller  # type: ignore[attr-defined]


def test_importing_the_package_loads_nothing_else() -> None:
    assert modules_after("import engine") == ["engine"]


def test_declaring_an_operator_does_not_load_the_engine_that_runs_it() -> None:
    loaded = modules_after("from engine import CustomResource, Operator, PermanentError")
    assert "engine.runtime.reconcile.operator" in loaded
    assert "engine.runtime.manager.controller" not in loaded
    assert not any(m.startswith(("engine.watchers", "engine.apiserver")) for m in loaded)


def test_the_errors_are_the_ones_the_engine_catches() -> None:
    from engine.effects.errors import PermanentError, RetryableError

    assert engine.PermanentError is PermanentError
    assert engine.RetryableError is RetryableError


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(".spec.title", "Dune", id="field"),
        pytest.param(".spec.copies", "2", id="number"),
        pytest.param(".spec.tags[1]", "b", id="index"),
        pytest.param(".spec.missing", "", id="missing"),
        pytest.param(".spec.tags[?(@.x)]", "", id="filter-unsupported"),
        pytest.param(".spec.on", "true", id="boolean"),
    ],
)
def test_printer_column_paths_read_from_the_object(path: str, expected: str) -> None:
    obj = {"spec": {"title": "Dune", "copies": 2, "tags": ["a", "b"], "on": True}}
    assert printer_columns.read_path(obj, path) == expected


def test_the_view_shows_the_operators_columns_but_not_phase_or_age_twice() -> None:
    columns = printer_columns.extra_columns(
        (
            {"name": "State", "jsonPath": ".status.phase"},
            {"name": "Title", "jsonPath": ".spec.title"},
            {"name": "Age", "jsonPath": ".metadata.creationTimestamp"},
        )
    )
    assert printer_columns.headers(columns) == ("TITLE",)

    class View:
        namespace, name, state, generation, last_event = "default", "dune", "Ready", 1, "x"
        created = "2026-01-01T00:00:00Z"

    objects = {"default/dune": {"spec": {"title": "Dune"}}}
    [row] = view_rows([View()], columns=columns, objects=objects)
    assert row.columns == ("Dune",)
    table = live_view.render_table([row], now=row.created_at or 0.0, title="t", columns=("TITLE",))
    assert [c.header for c in table.columns] == [
        "NAMESPACE", "NAME", "STATE", "GEN", "TITLE", "LAST EVENT", "AGE"
    ]  # fmt: skip
