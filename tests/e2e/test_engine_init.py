"""`engine init` generates a runnable operator project: its own `make test` passes with
the engine's interpreter, `make run` takes its sample to Ready on the embedded API
server, its config/ is what `engine manifests` writes for it, and its Dockerfile is the
engine's image plus its package (hadolint-clean)."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
MAKE = shutil.which("make")
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=sysconfig.get_path("scripts"))


def run(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGINE_", "PYTEST_"))}
    return subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("init")
    names = ("--group", "demo.example.com", "--version", "v1alpha1", "--kind", "Greeting")
    done = run(sys.executable, "-m", "engine", "init", "greeter-op", *names, cwd=root)
    assert done.returncode == 0, done.stderr
    return root / "greeter-op"


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_the_generated_project_passes_its_own_make_test(project: Path) -> None:
    done = run("make", "test", f"ENGINE_PYTHON={sys.executable}", cwd=project, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_make_run_takes_the_sample_to_ready_on_the_embedded_api_server(project: Path) -> None:
    flags = "RUN_FLAGS=--duration 8 --plain --health-port 0"
    done = run("make", "run", f"ENGINE_PYTHON={sys.executable}", flags, cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sample default/hello: created" in done.stdout
    assert "default/hello Ready generation=1" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_its_config_is_what_engine_manifests_writes_for_it(project: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "config"
    options = ("--operator", "greeter_op.operator:OPERATOR", "--image", "greeter-op:0.1.0",
               "--name", "greeter-op", "--namespace", "greeter-op-system")  # fmt: skip
    done = run(sys.executable, "-m", "engine", "manifests", *options, "--out", str(fresh),
               cwd=project)  # fmt: skip
    assert done.returncode == 0, done.stderr
    compared = filecmp.dircmp(project / "config", fresh)
    assert compared.left_only == compared.right_only == compared.diff_files == []
    assert (
        "greetings.demo.example.com" in (project / "config" / "crd" / "greeting.yaml").read_text()
    )


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed")
def test_its_dockerfile_is_the_engine_image_plus_its_package(project: Path) -> None:
    assert HADOLINT is not None
    lines = [line for line in (project / "Dockerfile").read_text().splitlines()
             if line and not line.startswith("#")]  # fmt: skip
    assert lines == ["FROM engine:0.1.0", "COPY greeter_op /opt/operator/greeter_op"]
    done = run(HADOLINT, "--no-color", "Dockerfile", cwd=project)
    assert done.returncode == 0, done.stdout
