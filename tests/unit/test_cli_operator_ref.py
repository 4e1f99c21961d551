"""Bad input to --operator and `engine init`: one line naming the thing and what to do,
exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import cli
from engine.cli.operator_ref import default_ref, load_operator

GOOD = """
from engine import ChildKind, CustomResource, Operator

async def provision(ctx):
    return None

def sync_provision(ctx):
    return None

SCHEMA = {"type": "object", "properties": {"spec": {"type": "object"}}}
THING = CustomResource(group="t.test", version="v1", kind="Thing", plural="things", schema=SCHEMA)
OPERATOR = Operator(resource=THING, provision=provision)
NOT_AN_OPERATOR = 42
SYNC = Operator(resource=THING, provision=sync_provision)
LOOSE = Operator(
    resource=CustomResource(group="t.test", version="v1", kind="Loose", plural="looses",
                            schema={"type": "object", "properties": {"spec": {}}}),
    provision=provision,
)
OWN = ChildKind(group="t.test", version="v1", kind="Thing", plural="things")
SELFISH = Operator(resource=THING, provision=provision, children=(OWN,))

def make():
    return OPERATOR
"""


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "things.py"
    path.write_text(GOOD)
    return path


def test_a_file_reference_to_an_operator_or_a_factory_loads_it(module: Path) -> None:
    assert load_operator(f"{module}:OPERATOR").resource.kind == "Thing"
    assert load_operator(f"{module}:make").resource.kind == "Thing"


def test_engine_operator_sets_the_default() -> None:
    assert default_ref({"ENGINE_OPERATOR": "pkg.mod:OP"}) == "pkg.mod:OP"
    assert default_ref({}) == "engine.cli.example_operator:site"


@pytest.mark.parametrize(
    ("attribute", "needle"),
    [
        pytest.param("MISSING", "has no attribute 'MISSING'", id="missing-attribute"),
        pytest.param("NOT_AN_OPERATOR", "is a int, not an Operator", id="not-an-operator"),
        pytest.param("SYNC", "the provision handler sync_provision is not async", id="sync"),
        pytest.param("LOOSE", "is not structural", id="non-structural"),
        pytest.param("SELFISH", "also declares it as a child kind", id="own-kind-as-child"),
    ],
)
def test_a_bad_operator_is_one_line_with_exit_2(module: Path, attribute: str, needle: str) -> None:
    result = CliRunner().invoke(cli, ["crd", "--operator", f"{module}:{attribute}"], env={})
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert result.output.strip().count("\n") == 0
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("reference", "needle"),
    [
        pytest.param("nowhere.at_all:X", "cannot import module 'nowhere.at_all'", id="module"),
        pytest.param("missing.py:X", "file missing.py does not exist", id="file"),
        pytest.param("no-colon", "should look like package.module:ATTRIBUTE", id="shape"),
    ],
)
@pytest.mark.parametrize("command", ["run", "replay", "release-finalizer", "manifests", "crd"])
def test_every_command_taking_an_operator_refuses_a_bad_reference(
    command: str, reference: str, needle: str, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.db"
    journal.touch()
    args = {
        "run": ["run", "--local"],
        "replay": ["replay", str(journal), "--verify"],
        "release-finalizer": ["release-finalizer", "default/x", "--kubeconfig", str(journal),
                              "--journal", str(journal)],
        "manifests": ["manifests", "--image", "x:1", "--out", str(tmp_path / "out")],
        "crd": ["crd"],
    }[command]  # fmt: skip
    result = CliRunner().invoke(cli, [*args, "--operator", reference], env={})
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert result.output.strip().count("\n") == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["--group", "nodot"], "--group 'nodot' is not a DNS subdomain", id="group"),
        pytest.param(["--version", "1.0"], "--version '1.0' is not like v1", id="version"),
        pytest.param(["--kind", "greeting"], "--kind 'greeting' must be CamelCase", id="kind"),
    ],
)
def test_engine_init_refuses_bad_names(args: list[str], needle: str, tmp_path: Path) -> None:
    base = {"--group": "demo.example.com", "--version": "v1", "--kind": "Greeting"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [part for pair in base.items() for part in pair]
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "new-op"), *flat], env={})
    assert result.exit_code == 2
    assert needle in result.output
    assert not (tmp_path / "new-op").exists()


def test_engine_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(
        cli, ["init", str(tmp_path / "busy"), "--group", "a.b", "--version", "v1", "--kind", "K"]
    )
    assert result.exit_code == 2
    assert "is not empty; choose a new directory" in result.output
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["notes.txt"]
