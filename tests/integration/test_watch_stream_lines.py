"""A watch response is split into lines however its chunks arrive: whole lines already
received are taken without waiting, a line split across chunks is joined, the last
unterminated line is returned at the end, and an over-long line is a transport error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from engine.watchers.client import TransportError, WatchStream


@asynccontextmanager
async def streaming(
    chunks: Sequence[bytes], *, read_bufsize: int = 2**16
) -> AsyncIterator[WatchStream]:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
            await asyncio.sleep(0.05)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/watch", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with (
            aiohttp.ClientSession(read_bufsize=read_bufsize) as session,
            session.get(f"http://127.0.0.1:{port}/watch") as response,
        ):
            yield WatchStream(response, "/watch")
    finally:
        await runner.cleanup()


async def test_lines_are_joined_across_chunks_and_the_last_one_ends_the_stream() -> None:
    async with streaming([b'{"a":1}\n{"b":2}\n{"c"', b":3}\n", b"tail"]) as stream:
        lines = []
        while line := await stream.readline():
            lines.append(line)
        assert lines == [b'{"a":1}\n', b'{"b":2}\n', b'{"c":3}\n', b"tail"]


async def test_a_received_line_is_taken_without_waiting_and_a_partial_one_is_not() -> None:
    async with streaming([b'{"a":1}\n{"b":2}\n{"c"', b":3}\n"]) as stream:
        assert await stream.readline() == b'{"a":1}\n'
        assert stream.ready_line() == b'{"b":2}\n'
        assert stream.ready_line() is None  # only the start of the third line is here
        assert await stream.readline() == b'{"c":3}\n'
        assert await stream.readline() == b""


async def test_a_line_longer_than_the_read_buffer_is_a_transport_error() -> None:
    async with streaming([b"x" * 5000, b"y" * 5000, b"\n"], read_bufsize=1024) as stream:
        with pytest.raises(TransportError, match="a line longer than"):
            await stream.readline()
