"""A write that reaches the API server once its database is closing is answered 503
ServiceUnavailable with a Status (the client retries it), not 500 with a logged bug."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from engine.apiserver.http.app import status_errors
from engine.apiserver.store.storage import Store, StoreClosed, Write


async def test_a_write_after_the_store_closed_gets_503_service_unavailable() -> None:
    store = await Store.open(":memory:")
    await store.close()

    async def create(request: web.Request) -> web.Response:
        await store.commit([Write("/configmaps/default/a", {"metadata": {"name": "a"}}, 0)])
        return web.json_response({})

    app = web.Application(middlewares=[status_errors])
    app.router.add_post("/api/v1/namespaces/default/configmaps", create)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        url = str(server.make_url("/api/v1/namespaces/default/configmaps"))
        async with session.post(url, json={}) as response:
            body = await response.json()
    assert response.status == 503
    assert body["kind"] == "Status"
    assert body["reason"] == "ServiceUnavailable"
    assert "stopping" in body["message"]
    assert StoreClosed.__name__ not in body["message"]  # not reported as an internal error
