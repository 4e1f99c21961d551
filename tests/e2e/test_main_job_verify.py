"""The main job's own journal verifies: `engine run --local` with the samples (`docs`
waits for `blog` through `dependsOn`) stopped with SIGTERM, and the same after a kill -9
in the middle of provisioning and a restart on the same state dir; `engine replay
--verify` runs the live reconcile loop over each journal and finds no divergence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.kubectl import needs_kubectl
from tests.e2e.test_engine_run import SAMPLES, all_ready, engine_run, verify_journal, wait_for

pytestmark = [pytest.mark.e2e, needs_kubectl]


def test_the_main_job_journal_verifies_after_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with engine_run(state, tmp_path / "run.log") as engine:
        wait_for("the samples are Ready", all_ready(engine, SAMPLES), log=engine.log)
    verify_journal(state / "journal.db")


def test_the_main_job_journal_verifies_after_a_kill_in_the_middle_and_a_restart(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    log = tmp_path / "killed.log"
    env = {**os.environ, "ENGINE_HEALTH_PORT": "0"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine", "run", "--local", "--plain",
             "--state-dir", str(state)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        # kill as soon as provisioning is under way and before every sample is Ready
        wait_for("provisioning to start", lambda: "Provisioning" in log.read_text(), log=log)
        time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with engine_run(state, tmp_path / "restarted.log") as engine:
        wait_for("the samples are Ready", all_ready(engine, SAMPLES), log=engine.log)
    verify_journal(state / "journal.db")
