"""Table output over real HTTP, as kubectl asks for it: printer columns in lists and watches;
and namespaces: the system ones cannot be deleted, deleting another empties it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from tests.integration.apiserver_support import GROUP, PLURAL, connected, install_site_crd, site

TABLE_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


async def test_list_as_table_shows_the_crd_printer_columns() -> None:
    async with connected() as conn:
        await install_site_crd(conn)
        await conn.custom.create_namespaced_custom_object(GROUP, "v1", "default", PLURAL, site("a"))
        await conn.custom.patch_namespaced_custom_object_status(
            GROUP, "v1", "default", PLURAL, "a", {"status": {"state": "Ready"}},
            _content_type="application/merge-patch+json",
        )  # fmt: skip
        url = f"{conn.server.url}/apis/{GROUP}/v1/namespaces/default/{PLURAL}?limit=500"
        async with aiohttp.ClientSession() as http:
            async with http.get(url, headers={"Accept": TABLE_ACCEPT}) as response:
                table = await response.json()
            async with http.get(url) as response:
                plain = await response.json()
        assert table["kind"] == "Table"
        assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "State", "Age"]
        assert table["rows"][0]["cells"][:2] == ["a", "Ready"]
        assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
        assert plain["kind"] == "SiteList"
        assert plain["items"][0]["kind"] == "Site"


async def test_watch_as_table_sends_table_events() -> None:
    async with connected() as conn:
        await install_site_crd(conn)
        made = await conn.custom.create_namespaced_custom_object(
            GROUP, "v1", "default", PLURAL, site("w")
        )
        url = (
            f"{conn.server.url}/apis/{GROUP}/v1/namespaces/default/{PLURAL}"
            f"?watch=true&resourceVersion={int(made['metadata']['resourceVersion']) - 1}"
            "&timeoutSeconds=1"
        )
        async with (
            aiohttp.ClientSession() as http,
            http.get(url, headers={"Accept": TABLE_ACCEPT}) as response,
        ):
            events: list[dict[str, Any]] = [
                json.loads(line) async for line in response.content if line.strip()
            ]
        assert [e["type"] for e in events] == ["ADDED"]
        assert events[0]["object"]["kind"] == "Table"
        assert events[0]["object"]["rows"][0]["cells"][0] == "w"


async def test_system_namespaces_cannot_be_deleted() -> None:
    async with connected() as conn:
        with pytest.raises(ApiException) as caught:
            await conn.core.delete_namespace("default")
        assert caught.value.status == 403


async def test_deleting_a_namespace_deletes_what_it_contains() -> None:
    async with connected() as conn:
        await conn.core.create_namespace({"metadata": {"name": "team"}})
        await conn.core.create_namespaced_config_map("team", {"metadata": {"name": "c"}})
        await conn.core.delete_namespace("team")  # Terminating: the namespace controller empties it
        for _ in range(200):
            everywhere = await conn.core.list_config_map_for_all_namespaces()
            namespaces = await conn.core.list_namespace()
            if "team" not in {n.metadata.name for n in namespaces.items}:
                break
            await asyncio.sleep(0.02)
        assert [i.metadata.name for i in everywhere.items] == []
        assert "team" not in {n.metadata.name for n in namespaces.items}
