"""The engine as the image runs it (B.7 S5, S12): `engine run` in a process of its own that
drops from root to UID/GID 65532 (the image's user) before it starts, with only its state
dir owned by that user, and a Python audit hook that notes every path the process opens
for writing, creates, renames, removes or connects SQLite to. It reconciles a Book to
Ready and stops on SIGTERM; every path it wrote is in its state dir or the temporary
directory.

Run it by path (`pytest tests/integration/bypath_faults_input_run_user.py`): the suite does
not collect it, for time (a process that imports the engine, starts, reconciles and stops:
about 8 s on the 2-core development machine under load)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from engine.testing import start_cluster
from tests.support.book_operator import book_operator, write_operator

RUN_AS = 65532
CHILD = r"""
import json, os, sys
state, kubeconfig, operator = sys.argv[1:4]
sys.dont_write_bytecode = True
# the interpreter's own files are under a directory only root may enter: everything the
# run needs is imported before the user changes
import engine.cli.main, engine.cli.run_engine, engine.runtime.manager.controller
import engine.example.site, engine.cli.operator_ref, sqlite3, encodings.idna
from engine.cli.operator_ref import load_operator
load_operator(operator)
import opentelemetry.sdk.trace, logging.handlers, uuid, zlib, hmac, secrets
import concurrent.futures.thread, encodings.raw_unicode_escape, encodings.unicode_escape
import encodings.latin_1, encodings.ascii, encodings.utf_8, encodings.idna
import requests, opentelemetry.exporter.otlp.proto.http.trace_exporter

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
CHANGES = {"os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "os.chmod",
           "os.truncate", "os.symlink", "os.link", "sqlite3.connect", "shutil.rmtree"}
written = set()

def audit(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & WRITE_FLAGS)
    elif event in CHANGES:
        path, writing = args[0], True
    else:
        return
    if writing and isinstance(path, (str, bytes, os.PathLike)):
        path = os.fsdecode(path)
        if path.startswith("file:"):  # an SQLite URI
            path = path.removeprefix("file:").partition("?")[0]
        written.add(os.path.abspath(path))

os.setgroups([])
os.setgid(65532)
os.setuid(65532)
sys.addaudithook(audit)
import atexit
atexit.register(lambda: print("WRITTEN " + json.dumps(sorted(written)), flush=True))
from engine.cli.main import cli
cli.main(["run", "--kubeconfig", kubeconfig, "--state-dir", state, "--operator", operator,
          "--plain", "--health-port", "0"], prog_name="engine", standalone_mode=True)
"""


def state_dir_of_its_own(shared: Path) -> Path:
    """`shared/state`, owned by the engine's user and closed to others; `shared` open to
    read (the kubeconfig and the operator's module go there)."""
    state = shared / "state"
    state.mkdir()
    os.chown(state, RUN_AS, RUN_AS)
    state.chmod(0o700)
    shared.chmod(0o755)
    return state


async def test_engine_run_as_uid_65532_writes_only_its_state_dir_and_tmp(tmp_path: Path) -> None:
    shared = Path(tempfile.mkdtemp(prefix="engine-run-user-"))  # tmp_path is root's alone
    try:
        state = state_dir_of_its_own(shared)
        operator_file = write_operator(shared / "operator")
        operator = book_operator(shared / "operator")
        async with start_cluster(operator, directory=tmp_path / "cluster") as cluster:
            kubeconfig = shared / "kubeconfig"
            shutil.copy(cluster.kubeconfig, kubeconfig)
            os.chown(kubeconfig, RUN_AS, RUN_AS)
            env = {**os.environ, "BOOK_LEDGER": str(state / "ledger"), "HOME": str(state)}
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CHILD, str(state), str(kubeconfig),
                f"{operator_file}:OPERATOR", env=env, cwd=state,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            try:
                await cluster.create({"metadata": {"name": "dune"}, "spec": {"title": "Dune"}})
                for _ in range(600):
                    obj = await cluster.get("dune")
                    if (obj or {}).get("status", {}).get("phase") == "Ready":
                        break
                    if process.returncode is not None:
                        assert process.stdout is not None
                        early = (await process.stdout.read()).decode(errors="replace")
                        raise AssertionError(f"the engine exited: {early[-3000:]}")
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("the Book is not Ready within 30 s")
                process.send_signal(signal.SIGTERM)
                output, _ = await asyncio.wait_for(process.communicate(), 20)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        text = output.decode(errors="replace")
        assert process.returncode == 0, text[-3000:]
        [line] = [x for x in text.splitlines() if x.startswith("WRITTEN ")]
        written = [Path(p) for p in json.loads(line.removeprefix("WRITTEN "))]
        owners = {p.stat().st_uid for p in state.rglob("*")}
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    allowed = (state, Path(tempfile.gettempdir()))
    assert any(p == state / "journal.db" for p in written), written
    outside = [p for p in written if not any(p.is_relative_to(a) for a in allowed)]
    assert outside == [], outside
    assert owners == {RUN_AS}, "every file the engine made belongs to its user"
    print("written:", *sorted(str(p) for p in written), sep="\n  ")
