"""Pending (not collected by the suite: run it by path) until `engine run` refuses a
read-only state dir in one clear line (J11).

The defect: with the state dir on a read-only file system, `engine run` dies with a
traceback (`OSError: [Errno 30] Read-only file system` opening `engine.log`, from
`engine/cli/run_engine.py`, `_engine_log`) and exit code 1, where bad input must get one
line naming the thing and what to do, and exit code 2. Needs a tmpfs mount (root).

    .venv/bin/pytest -q -p no:cacheprovider tests/pending/pending_read_only_state_dir.py
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from tests.support.crash_runs import new_engine
from tests.support.fault_harness import running_cluster
from tests.support.small_fs import small_file_system


async def test_a_read_only_state_dir_is_refused_in_one_line_with_exit_code_2(
    tmp_path: Path,
) -> None:
    async with running_cluster(tmp_path) as cluster:
        with small_file_system(tmp_path / "engine", "1m") as small:
            remount = ["mount", "-o", "remount,ro", str(small)]
            await asyncio.to_thread(subprocess.run, remount, check=True, capture_output=True)
            engine = new_engine(cluster, "engine")
            await engine.start()
            assert engine.process is not None
            code = await asyncio.wait_for(engine.process.wait(), 60)
            out = engine.output()
            assert "Traceback" not in out, out[-3000:]
            assert code == 2, out[-3000:]
            assert str(small) in out, out
