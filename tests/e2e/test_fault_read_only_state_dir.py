"""A read-only state dir is refused in one clear line, exit code 2 (J11). Needs a tmpfs
mount (root)."""

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
