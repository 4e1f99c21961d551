"""One load-generating client process of `engine bench apiserver`.

`python -m engine.bench.apiserver_load URL CREATES PATCHES CONCURRENCY OBJECTS` builds
its request bodies, prints `ready`, then runs each phase named on a line of stdin
(`create`: POST the objects of CREATES, a range `first:count` of indices; `patch`: the
merge patches of PATCHES, patch i to object i modulo OBJECTS) and answers each with one
JSON line: when it started and finished (`time.monotonic`, one clock for every process
on the machine) and the first error, if any. End of input ends it.

The client is kept lean so that it measures the server, not itself: bodies are encoded
before the phase starts, answers are only checked for their status (a body is read, and
decoded only when the status is wrong), and every connection is kept alive.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp

GROUP = "bench.example.dev"
PLURAL = "widgets"
COLLECTION = f"/apis/{GROUP}/v1/namespaces/default/{PLURAL}"
MERGE = "application/merge-patch+json"
_JSON = {"Content-Type": "application/json"}
_MERGE = {"Content-Type": MERGE}


def create_body(index: int) -> bytes:
    """The Widget `w-<index>` as a create body."""
    return json.dumps(
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Widget",
            "metadata": {"name": f"w-{index}", "labels": {"bench": "yes"}},
            "spec": {"size": index},
        }
    ).encode()


def patch_body(size: int) -> bytes:
    """A merge patch setting the Widget's size."""
    return json.dumps({"spec": {"size": size}}).encode()


async def _run_phase(
    session: aiohttp.ClientSession,
    requests: list[tuple[str, str, bytes, dict[str, str], int]],
    concurrency: int,
) -> dict[str, object]:
    pending = iter(requests)
    errors: list[str] = []

    async def worker() -> None:
        for method, path, body, headers, expected in pending:
            async with session.request(method, path, data=body, headers=headers) as response:
                answer = await response.read()
                if response.status != expected and not errors:
                    errors.append(f"{method} {path} -> {response.status}: {answer[:300]!r}")

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"started": started, "finished": time.monotonic(), "error": errors[0] if errors else ""}


def _indices(span: str) -> range:
    first, count = (int(part) for part in span.split(":"))
    return range(first, first + count)


async def _main(url: str, creates: range, patches: range, concurrency: int, objects: int) -> None:
    prepared = {
        "create": [("POST", COLLECTION, create_body(i), _JSON, 201) for i in creates],
        "patch": [
            ("PATCH", f"{COLLECTION}/w-{i % objects}", patch_body(objects + i), _MERGE, 200)
            for i in patches
        ],
    }
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=600)
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:
        print("ready", flush=True)
        while line := (await reader.readline()).decode().strip():
            if line not in prepared:
                print(json.dumps({"error": f"unknown phase {line!r}"}), flush=True)
                continue
            print(json.dumps(await _run_phase(session, prepared[line], concurrency)), flush=True)


def main(argv: list[str]) -> None:
    url, creates, patches, concurrency, objects = argv
    asyncio.run(_main(url, _indices(creates), _indices(patches), int(concurrency), int(objects)))


if __name__ == "__main__":
    main(sys.argv[1:])
