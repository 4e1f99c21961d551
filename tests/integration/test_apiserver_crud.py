"""CRUD on built-in kinds over real HTTP with kubernetes-asyncio: create, get, list with
selectors and paging, conflicts, dry run, discovery, error bodies and the audit log."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from engine.apiserver.http.embedded import serve_apiserver
from tests.integration.apiserver_support import connected


def configmap(name: str, **labels: str) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": name}}


async def test_create_returns_201_with_server_metadata_and_get_reads_it_back() -> None:
    async with connected() as conn:
        created, status, _ = await conn.core.create_namespaced_config_map_with_http_info(
            "default", configmap("one")
        )
        assert status == 201
        meta = created.metadata
        assert meta.uid
        assert meta.resource_version.isdigit()
        assert meta.generation == 1
        assert meta.creation_timestamp is not None
        assert meta.namespace == "default"
        read = await conn.core.read_namespaced_config_map("one", "default")
        assert read.data == {"k": "one"}
        assert read.metadata.resource_version == meta.resource_version


async def test_generate_name_and_duplicate_name_is_409_already_exists() -> None:
    async with connected() as conn:
        made = await conn.core.create_namespaced_config_map(
            "default", {"metadata": {"generateName": "cm-"}, "data": {}}
        )
        assert made.metadata.name.startswith("cm-")
        assert len(made.metadata.name) == 8
        await conn.core.create_namespaced_config_map("default", configmap("dup"))
        with pytest.raises(ApiException) as caught:
            await conn.core.create_namespaced_config_map("default", configmap("dup"))
        assert caught.value.status == 409
        assert json.loads(caught.value.body)["reason"] == "AlreadyExists"


async def test_list_filters_by_label_and_field_selectors() -> None:
    async with connected() as conn:
        for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
            await conn.core.create_namespaced_config_map("default", configmap(name, tier=tier))
        web = await conn.core.list_namespaced_config_map("default", label_selector="tier=web")
        assert [i.metadata.name for i in web.items] == ["a", "c"]
        not_web = await conn.core.list_namespaced_config_map(
            "default", label_selector="tier notin (web)"
        )
        assert [i.metadata.name for i in not_web.items] == ["b"]
        by_name = await conn.core.list_namespaced_config_map(
            "default", field_selector="metadata.name=c"
        )
        assert [i.metadata.name for i in by_name.items] == ["c"]
        everywhere = await conn.core.list_config_map_for_all_namespaces(label_selector="tier")
        assert len(everywhere.items) == 3
        assert int(everywhere.metadata.resource_version) >= 3


async def test_list_pages_with_limit_and_continue() -> None:
    async with connected() as conn:
        for index in range(5):
            await conn.core.create_namespaced_config_map("default", configmap(f"p{index}"))
        seen: list[str] = []
        token = None
        pages = 0
        while True:
            page = await conn.core.list_namespaced_config_map("default", limit=2, _continue=token)
            pages += 1
            seen += [i.metadata.name for i in page.items]
            token = page.metadata._continue
            if not token:
                break
            assert page.metadata.remaining_item_count == 5 - len(seen)
        assert seen == ["p0", "p1", "p2", "p3", "p4"]
        assert pages == 3


async def test_a_write_between_pages_shows_in_the_next_page() -> None:
    async with connected() as conn:
        for index in range(5):
            await conn.core.create_namespaced_config_map("default", configmap(f"p{index}"))
        first = await conn.core.list_namespaced_config_map("default", limit=2)
        await conn.core.delete_namespaced_config_map("p3", "default")
        await conn.core.create_namespaced_config_map("default", configmap("p9"))
        rest = await conn.core.list_namespaced_config_map(
            "default", _continue=first.metadata._continue
        )
        assert [i.metadata.name for i in first.items + rest.items] == ["p0", "p1", "p2", "p4", "p9"]


async def test_deletecollection_deletes_only_the_selected_objects() -> None:
    async with connected() as conn:
        for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
            await conn.core.create_namespaced_config_map("default", configmap(name, tier=tier))
        await conn.core.delete_collection_namespaced_config_map(
            "default", label_selector="tier=web"
        )
        left = await conn.core.list_namespaced_config_map("default")
        assert [i.metadata.name for i in left.items] == ["b"]


async def test_replace_with_stale_resource_version_is_409_conflict() -> None:
    async with connected() as conn:
        created = await conn.core.create_namespaced_config_map("default", configmap("x"))
        created.data = {"k": "v2"}
        updated = await conn.core.replace_namespaced_config_map("x", "default", created)
        assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
        created.data = {"k": "v3"}  # still carries the old resourceVersion
        with pytest.raises(ApiException) as caught:
            await conn.core.replace_namespaced_config_map("x", "default", created)
        assert caught.value.status == 409
        assert json.loads(caught.value.body)["reason"] == "Conflict"


async def test_no_op_update_keeps_the_resource_version() -> None:
    async with connected() as conn:
        created = await conn.core.create_namespaced_config_map("default", configmap("same"))
        again = await conn.core.patch_namespaced_config_map(
            "same", "default", {"data": {"k": "same"}}
        )
        assert again.metadata.resource_version == created.metadata.resource_version


async def test_dry_run_persists_nothing() -> None:
    async with connected() as conn:
        before = await conn.core.list_namespaced_config_map("default")
        made = await conn.core.create_namespaced_config_map(
            "default", configmap("dry"), dry_run="All"
        )
        assert made.metadata.name == "dry"
        after = await conn.core.list_namespaced_config_map("default")
        assert after.items == []
        assert after.metadata.resource_version == before.metadata.resource_version
        with pytest.raises(ApiException) as caught:
            await conn.core.read_namespaced_config_map("dry", "default")
        assert caught.value.status == 404


async def test_write_into_a_missing_namespace_is_404() -> None:
    async with connected() as conn:
        with pytest.raises(ApiException) as caught:
            await conn.core.create_namespaced_config_map("nowhere", configmap("x"))
        assert caught.value.status == 404


async def test_delete_of_a_builtin_returns_success_status_and_removes_it() -> None:
    async with connected() as conn:
        await conn.core.create_namespaced_config_map("default", configmap("gone"))
        answer = await conn.core.delete_namespaced_config_map("gone", "default")
        assert answer.status == "Success"
        with pytest.raises(ApiException) as caught:
            await conn.core.read_namespaced_config_map("gone", "default")
        assert caught.value.status == 404
        assert json.loads(caught.value.body)["kind"] == "Status"


async def test_delete_precondition_mismatch_is_409() -> None:
    async with connected() as conn:
        await conn.core.create_namespaced_config_map("default", configmap("kept"))
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="other"))
        with pytest.raises(ApiException) as caught:
            await conn.core.delete_namespaced_config_map("kept", "default", body=options)
        assert caught.value.status == 409


async def test_discovery_serves_core_v1_and_the_builtin_groups() -> None:
    async with connected() as conn:
        core = await client.CoreV1Api(conn.api).get_api_resources()
        assert core.group_version == "v1"
        names = {r.name for r in core.resources}
        assert {"namespaces", "configmaps", "secrets", "services", "events"} <= names
        groups = await client.ApisApi(conn.api).get_api_versions()
        listed = {g.name for g in groups.groups}
        assert {"apps", "coordination.k8s.io", "events.k8s.io", "apiextensions.k8s.io"} <= listed
        namespaces = await conn.core.list_namespace()
        assert "default" in {n.metadata.name for n in namespaces.items}


async def test_events_are_served_through_core_and_events_k8s_io() -> None:
    async with connected() as conn:
        events = client.EventsV1Api(conn.api)
        body = {
            "metadata": {"name": "ev1"},
            "eventTime": "2024-01-01T00:00:00.000000Z",
            "note": "provisioned",
            "reason": "Ready",
            "type": "Normal",
            "action": "Provision",
            "reportingController": "engine",
            "reportingInstance": "engine-0",
            "regarding": {"kind": "ConfigMap", "name": "x", "namespace": "default"},
        }
        await events.create_namespaced_event("default", body)
        core_view = await conn.core.read_namespaced_event("ev1", "default")
        assert core_view.message == "provisioned"
        assert core_view.involved_object.name == "x"


async def test_protobuf_body_is_415_naming_the_apply_alternative() -> None:
    async with connected() as conn, aiohttp.ClientSession() as http:
        url = f"{conn.server.url}/api/v1/namespaces/default/configmaps"
        headers = {"Content-Type": "application/vnd.kubernetes.protobuf"}
        async with http.post(url, data=b"k8s\x00junk", headers=headers) as response:
            assert response.status == 415
            status = json.loads(await response.read())
        assert status["reason"] == "UnsupportedMediaType"
        assert "--dry-run=client -o yaml | kubectl apply -f -" in status["message"]


async def test_audit_log_records_one_line_per_request(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    async with serve_apiserver(audit_log=log) as server, aiohttp.ClientSession() as http:
        base = f"{server.url}/api/v1/namespaces/default/configmaps"
        async with http.post(base, json={"metadata": {"name": "a"}}) as response:
            assert response.status == 201
        async with http.get(f"{base}/missing") as response:
            assert response.status == 404
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["verb"], e["resource"], e["name"], e["code"]) for e in lines] == [
        ("create", "configmaps", "", 201),
        ("get", "configmaps", "missing", 404),
    ]
    assert lines[0]["namespace"] == "default"
    assert log.stat().st_mode & 0o777 == 0o600
