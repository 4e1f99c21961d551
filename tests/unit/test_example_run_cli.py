"""`engine run`'s bad input: one clear line, no traceback, exit 2 (never starts a server)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def engine(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param((), "choose exactly one of --local", id="no-mode"),
        pytest.param(("--local", "--in-cluster"), "got --local and --in-cluster", id="two-modes"),
        pytest.param(("--local", "--duration", "0"), "--duration", id="zero-duration"),
        pytest.param(
            ("--local", "--samples", "nowhere"), "nowhere is not a directory", id="samples"
        ),
        pytest.param(
            ("--local", "--config", "missing.toml"), "cannot read config file", id="config"
        ),
    ],
)
def test_bad_run_flags_get_one_clear_line(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    result = engine("run", *args, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".engine").exists()


def test_bad_setting_in_environment_names_the_variable(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine", "run", "--local"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
        env={"ENGINE_MAX_CONCURRENT_RECONCILES": "lots", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "ENGINE_MAX_CONCURRENT_RECONCILES" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_kubeconfig_is_one_line(tmp_path: Path) -> None:
    result = engine("run", "--kubeconfig", "absent.yaml", "--state-dir", "s", cwd=tmp_path)
    assert result.returncode == 2
    assert "kubeconfig absent.yaml does not exist" in result.stderr
    assert "Traceback" not in result.stderr
