"""The Kubernetes writer's own HTTP/1.1 connections, against a real aiohttp server:
kept alive and reused, replaced when the server closed them, chunked and until-close
answers, and bounded in time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from engine.effects.http_connections import Connections


@pytest.fixture
async def server() -> AsyncIterator[tuple[Connections, list[object]]]:
    peers: list[object] = []

    async def plain(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        body = await request.read()
        return web.json_response({"got": body.decode(), "path": request.path_qs})

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b'{"parts":', b"[1,2,", b"3]}"):
            await response.write(part)
        await response.write_eof()
        return response

    async def closing(request: web.Request) -> web.Response:
        return web.Response(text="{}", headers={"Connection": "close"})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.Response(text="{}")

    app = web.Application()
    app.router.add_route("*", "/plain", plain)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/closing", closing)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, keepalive_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    connections = Connections(host="127.0.0.1", port=port, authority=f"127.0.0.1:{port}", tls=None)
    try:
        yield connections, peers
    finally:
        await connections.close()
        await runner.cleanup()


async def test_a_connection_is_kept_and_replaced_once_the_server_closed_it(
    server: tuple[Connections, list[object]],
) -> None:
    connections, peers = server
    for body in (b"one", b"two"):
        answer = await connections.request(
            "PATCH", "/plain?x=1", {"Content-Type": "application/json"}, body, within=5
        )
        assert answer.status == 200
        assert answer.header("Content-Type") == "application/json; charset=utf-8"
        assert answer.body == b'{"got": "%s", "path": "/plain?x=1"}' % body
    assert peers[0] == peers[1]  # the same connection, kept alive
    await asyncio.sleep(0.6)  # the server closes the idle connection
    answer = await connections.request("GET", "/plain", {}, None, within=5)
    assert answer.status == 200
    assert peers[2] != peers[1]  # sent again on a new connection


async def test_chunked_and_closing_answers_are_read_whole(
    server: tuple[Connections, list[object]],
) -> None:
    connections, peers = server
    chunked = await connections.request("GET", "/chunked", {}, None, within=5)
    assert chunked.body == b'{"parts":[1,2,3]}'
    assert (await connections.request("GET", "/closing", {}, None, within=5)).body == b"{}"
    await connections.request("GET", "/plain", {}, None, within=5)
    await connections.request("GET", "/plain", {}, None, within=5)
    assert peers[0] == peers[1]  # after the closing answer, one new kept connection


async def test_a_slow_answer_times_out_and_its_connection_is_not_reused(
    server: tuple[Connections, list[object]],
) -> None:
    connections, _peers = server
    with pytest.raises(TimeoutError):
        await connections.request("GET", "/slow", {}, None, within=0.2)
    assert (await connections.request("GET", "/plain", {}, None, within=5)).status == 200


async def test_a_header_with_a_line_break_is_never_sent(
    server: tuple[Connections, list[object]],
) -> None:
    connections, peers = server
    with pytest.raises(ValueError, match="line break"):
        await connections.request("GET", "/plain", {"X-Bad": "a\r\nInjected: 1"}, None, within=5)
    assert peers == []
