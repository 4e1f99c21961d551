"""`engine apiserver` killed with SIGKILL keeps every write it answered: commits are
written on the event loop's thread and the WAL is checkpointed every CHECKPOINT_EVERY
changes, so the kill lands with frames both checkpointed and not.

Run by path (two server starts and 1,200 writes: about 10 s on a loaded machine).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from engine.apiserver.store.storage import CHECKPOINT_EVERY

URL = re.compile(rb"http://127\.0\.0\.1:\d+")
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


@asynccontextmanager
async def apiserver(db: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`engine apiserver` on `db`, its URL once it listens; killed (SIGKILL) at the end."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "engine", "apiserver", "--db", str(db), "--port", "0"),
        *("--kubeconfig", str(db.with_suffix(".kubeconfig"))),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        found = URL.search(line)
        assert found is not None, line
        yield process, found.group(0).decode()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        await process.wait()


async def create_configmaps(url: str, count: int) -> dict[str, str]:
    """POST `count` ConfigMaps from 8 concurrent writers; name -> resourceVersion of each
    one answered 201."""
    answered: dict[str, str] = {}
    names = iter(range(count))

    async def writer(session: aiohttp.ClientSession) -> None:
        for index in names:
            body = {"metadata": {"name": f"cm-{index}"}, "data": {"index": str(index)}}
            async with session.post(CONFIGMAPS, json=body) as response:
                assert response.status == 201, await response.text()
                created = json.loads(await response.read())
                answered[f"cm-{index}"] = created["metadata"]["resourceVersion"]

    async with aiohttp.ClientSession(url) as session:
        await asyncio.gather(*(writer(session) for _ in range(8)))
    return answered


async def test_every_answered_write_survives_sigkill_of_the_server(tmp_path: Path) -> None:
    db = tmp_path / "api.db"
    count = CHECKPOINT_EVERY + 200
    async with apiserver(db) as (process, url):
        answered = await create_configmaps(url, count)
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert len(answered) == count
    async with apiserver(db) as (_, url), aiohttp.ClientSession(url) as session:
        async with session.get(CONFIGMAPS) as response:
            listed = json.loads(await response.read())
        stored = {
            item["metadata"]["name"]: item["metadata"]["resourceVersion"]
            for item in listed["items"]
        }
        assert stored == answered
        body = {"metadata": {"name": "after"}}
        async with session.post(CONFIGMAPS, json=body) as response:
            after = json.loads(await response.read())
        assert int(after["metadata"]["resourceVersion"]) > max(int(v) for v in answered.values())
