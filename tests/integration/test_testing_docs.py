"""Every example of docs/testing.md runs as written: a project from `engine init`, the
guide's conftest.py and its test blocks as that project's tests, run by pytest."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)


def test_the_testing_guide_examples_pass(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGINE_", "PYTEST_"))}
    names = ("--group", "demo.example.com", "--version", "v1", "--kind", "Greeting")
    made = subprocess.run(
        [sys.executable, "-m", "engine", "init", "greeter", *names],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    project = tmp_path / "greeter"
    conftest, *examples = blocks()
    assert conftest.startswith("# tests/conftest.py")
    (project / "tests" / "conftest.py").write_text(conftest)
    for stale in ("test_handlers.py", "test_operator.py"):
        (project / "tests" / stale).unlink()
    for index, example in enumerate(examples):
        (project / "tests" / f"test_guide_{index}.py").write_text(example)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(examples)} passed" in done.stdout
