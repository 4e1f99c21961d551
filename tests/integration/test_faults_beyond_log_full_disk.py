"""A full disk under the engine's own log file (it lives in the state dir): the log
`engine run` opens there meets ENOSPC on a small tmpfs filled to the brim. Stderr gets
one line naming the file and the cause, then each warning as a plain line, not Python's
"--- Logging error ---" and a traceback per record; the records below warnings are not
printed. Once space is freed the log goes on and says that records met a write error.
The run's own log set-up (`_engine_log`) and a real file system.

Needs a tmpfs mount (root with CAP_SYS_ADMIN); skipped where mounting is refused."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from rich.console import Console

from engine.cli.run_engine import _engine_log
from engine.runtime.manager.settings import Settings
from tests.support.small_fs import fill, small_file_system

RECORDS = 200


def test_a_full_disk_under_the_log_file_is_reported_once_and_the_log_goes_on(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with small_file_system(tmp_path / "state", "1m") as state:
        log = logging.getLogger("engine.faults")
        with _engine_log(Settings(state_dir=state), Console(file=io.StringIO())):
            log.warning("written before the disk filled up")
            filler = state / "filler"
            fill(filler)
            for number in range(RECORDS):
                log.info("record %d while the disk is full", number)
            log.warning("the one warning while the disk is full")
            _, err = capfd.readouterr()
            filler.unlink()
            log.warning("written once space is free again")
        text = (state / "engine.log").read_text()
    assert "--- Logging error ---" not in err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0] == (
        f"engine: log lines cannot be written to {state / 'engine.log'} (No space left on "
        "device); warnings go here meanwhile, the rest may be lost (free space there)"
    )
    assert lines[1].endswith("WARNING engine.faults: the one warning while the disk is full")
    assert "written before the disk filled up" in text
    lines = text.splitlines()
    after = next(n for n, line in enumerate(lines) if "once space is free again" in line)
    assert "log records met a write error before the last one" in lines[after + 1]
