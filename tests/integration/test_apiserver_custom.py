"""Custom resources over real HTTP with kubernetes-asyncio: CRDs served at once, schema
validation (422 with causes), defaults, pruning, Strict field validation, status
subresource isolation and generation rules, and CRD deletion taking its objects along."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.integration.apiserver_support import (
    GROUP,
    PLURAL,
    SITE_CRD,
    Connected,
    connected,
    install_site_crd,
    site,
)

MERGE = "application/merge-patch+json"


async def _create(conn: Connected, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    created: dict[str, Any] = await conn.custom.create_namespaced_custom_object(
        GROUP, "v1", "default", PLURAL, body, **kwargs
    )
    return created


async def _patch(
    conn: Connected, name: str, body: Any, *, content_type: str = MERGE
) -> dict[str, Any]:
    patched: dict[str, Any] = await conn.custom.patch_namespaced_custom_object(
        GROUP, "v1", "default", PLURAL, name, body, _content_type=content_type
    )
    return patched


async def _patch_status(conn: Connected, name: str, body: Any) -> dict[str, Any]:
    patched: dict[str, Any] = await conn.custom.patch_namespaced_custom_object_status(
        GROUP, "v1", "default", PLURAL, name, body, _content_type=MERGE
    )
    return patched


async def test_created_crd_is_established_and_served_at_once() -> None:
    async with connected() as conn:
        await install_site_crd(conn)
        crd = await client.ApiextensionsV1Api(conn.api).read_custom_resource_definition(
            SITE_CRD["metadata"]["name"]
        )
        conditions = {c.type: c.status for c in crd.status.conditions}
        assert conditions == {"NamesAccepted": "True", "Established": "True"}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{conn.server.url}/apis/{GROUP}/v1") as response:
                listed = await response.json()
            async with http.get(f"{conn.server.url}/openapi/v3") as response:
                index = await response.json()
        names = [r["name"] for r in listed["resources"]]
        assert listed["groupVersion"] == f"{GROUP}/v1"
        assert names == ["sites", "sites/status"]
        assert f"apis/{GROUP}/v1" in index["paths"]
        created = await _create(conn, site("one"))
        assert created["kind"] == "Site"
        assert created["apiVersion"] == f"{GROUP}/v1"
        assert created["metadata"]["generation"] == 1


async def test_invalid_custom_resource_is_422_with_field_causes() -> None:
    async with connected() as conn:
        await install_site_crd(conn)
        with pytest.raises(ApiException) as caught:
            await _create(conn, site("bad", size="big"))
        assert caught.value.status == 422
        status = json.loads(caught.value.body)
        assert status["reason"] == "Invalid"
        causes = status["details"]["causes"]
        assert [c["field"] for c in causes] == ["spec.size"]
        with pytest.raises(ApiException) as caught:
            await _create(conn, {**site("missing"), "spec": {}})
        assert (
            json.loads(caught.value.body)["details"]["causes"][0]["reason"] == "FieldValueRequired"
        )


async def test_bad_name_is_422() -> None:
    async with connected() as conn:
        await install_site_crd(conn)
        with pytest.raises(ApiException) as caught:
            await _create(conn, site("Not_A_Name"))
        assert caught.value.status == 422
        assert json.loads(caught.value.body)["details"]["causes"][0]["field"] == "metadata.name"


async def test_defaults_are_applied_and_unknown_fields_pruned() -> None:
    async with connected() as conn:
        await install_site_crd(conn)
        created = await _create(conn, site("d", surprise=True))
        assert created["spec"] == {"size": 3, "tier": "small"}


async def test_defaults_added_to_the_crd_later_apply_when_reading_older_objects() -> None:
    async with connected() as conn:
        await install_site_crd(conn)
        await _create(conn, site("old"))
        crds = client.ApiextensionsV1Api(conn.api)
        name = SITE_CRD["metadata"]["name"]
        schema_patch = [
            {
                "op": "add",
                "path": "/spec/versions/0/schema/openAPIV3Schema"
                "/properties/spec/properties/owner/default",
                "value": "nobody",
            }
        ]
        await crds.patch_custom_resource_definition(name, schema_patch)
        read = await conn.custom.get_namespaced_custom_object(GROUP, "v1", "default", PLURAL, "old")
        assert read["spec"]["owner"] == "nobody"


async def test_strict_field_validation_rejects_unknown_fields_with_400() -> None:
    async with connected() as conn:
        await install_site_crd(conn)
        with pytest.raises(ApiException) as caught:
            await _create(conn, site("s", surprise=True), field_validation="Strict")
        assert caught.value.status == 400
        assert 'unknown field "spec.surprise"' in json.loads(caught.value.body)["message"]


async def test_warn_field_validation_answers_with_a_warning_header() -> None:
    async with connected() as conn, aiohttp.ClientSession() as http:
        await install_site_crd(conn)
        url = f"{conn.server.url}/apis/{GROUP}/v1/namespaces/default/{PLURAL}?fieldValidation=Warn"
        async with http.post(url, json=site("w", surprise=1)) as response:
            assert response.status == 201
            warnings = response.headers.getall("Warning")
            stored = await response.json()
        assert len(warnings) == 1
        assert warnings[0].startswith("299 - ")
        assert "spec.surprise" in warnings[0]
        assert "surprise" not in stored["spec"]


async def test_status_subresource_isolates_spec_and_status_and_generation_follows_spec() -> None:
    async with connected() as conn:
        await install_site_crd(conn)
        await _create(conn, {**site("g"), "status": {"state": "ignored"}})
        read = await conn.custom.get_namespaced_custom_object(GROUP, "v1", "default", PLURAL, "g")
        assert "status" not in read
        after_status = await _patch_status(
            conn, "g", {"status": {"state": "Ready"}, "spec": {"size": 9}}
        )
        assert after_status["status"] == {"state": "Ready"}
        assert after_status["spec"]["size"] == 3
        assert after_status["metadata"]["generation"] == 1
        main = await _patch(conn, "g", {"spec": {"size": 4}, "status": {"state": "Hacked"}})
        assert main["status"] == {"state": "Ready"}
        assert main["metadata"]["generation"] == 2
        labelled = await _patch(conn, "g", {"metadata": {"labels": {"a": "b"}}})
        assert labelled["metadata"]["generation"] == 2
        assert int(labelled["metadata"]["resourceVersion"]) > int(
            main["metadata"]["resourceVersion"]
        )


async def test_merge_json_and_apply_patches_and_415_for_strategic_merge_on_custom() -> None:
    async with connected() as conn:
        await install_site_crd(conn)
        await _create(conn, site("p", owner="ann"))
        merged = await _patch(conn, "p", {"spec": {"owner": None, "size": 5}})
        assert "owner" not in merged["spec"]
        assert merged["spec"]["size"] == 5
        jsoned = await _patch(
            conn, "p", [{"op": "replace", "path": "/spec/size", "value": 6}],
            content_type="application/json-patch+json",
        )  # fmt: skip
        assert jsoned["spec"]["size"] == 6
        with pytest.raises(ApiException) as caught:
            await _patch(
                conn, "p", {"spec": {"size": 7}}, content_type="application/json-patch+json"
            )
        assert caught.value.status in (400, 422)
        with pytest.raises(ApiException) as caught:
            await _patch(
                conn, "p", {"spec": {"size": 7}},
                content_type="application/strategic-merge-patch+json",
            )  # fmt: skip
        assert caught.value.status == 415
        _, status, _ = await conn.custom.patch_namespaced_custom_object_with_http_info(
            GROUP, "v1", "default", PLURAL, "fresh", site("fresh", size=2),
            field_manager="tests", _content_type="application/apply-patch+yaml",
        )  # fmt: skip
        assert status == 201  # created by apply
        applied = await conn.custom.get_namespaced_custom_object(
            GROUP, "v1", "default", PLURAL, "fresh"
        )
        assert applied["spec"] == {"size": 2, "tier": "small"}
        assert any(m["manager"] == "tests" for m in applied["metadata"]["managedFields"])


async def test_patch_with_stale_resource_version_is_409() -> None:
    async with connected() as conn:
        await install_site_crd(conn)
        created = await _create(conn, site("rv"))
        await _patch(conn, "rv", {"spec": {"size": 4}})
        stale = {
            "metadata": {"resourceVersion": created["metadata"]["resourceVersion"]},
            "spec": {"size": 5},
        }
        with pytest.raises(ApiException) as caught:
            await _patch(conn, "rv", stale)
        assert caught.value.status == 409


async def test_strategic_merge_patch_merges_containers_of_a_deployment_by_name() -> None:
    async with connected() as conn:
        apps = client.AppsV1Api(conn.api)
        body = {
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]
                    },
                },
            },
        }
        await apps.create_namespaced_deployment("default", body)
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}}
        patched = await apps.patch_namespaced_deployment("web", "default", patch)
        images = [c.image for c in patched.spec.template.spec.containers]
        assert images == ["a:1", "b:2"]
        assert patched.metadata.generation == 2


async def test_finalizers_hold_deletion_and_deletion_timestamp_is_immutable() -> None:
    async with connected() as conn:
        await install_site_crd(conn)
        await _create(conn, {**site("f"), "metadata": {"name": "f", "finalizers": ["engine/x"]}})
        marked: dict[str, Any] = await conn.custom.delete_namespaced_custom_object(
            GROUP, "v1", "default", PLURAL, "f"
        )
        stamp = marked["metadata"]["deletionTimestamp"]
        assert stamp
        assert marked["metadata"]["generation"] == 2
        again: dict[str, Any] = await conn.custom.delete_namespaced_custom_object(
            GROUP, "v1", "default", PLURAL, "f"
        )
        assert again["metadata"]["resourceVersion"] == marked["metadata"]["resourceVersion"]
        cleared = await _patch(
            conn, "f", {"metadata": {"deletionTimestamp": None, "labels": {"x": "y"}}}
        )
        assert cleared["metadata"]["deletionTimestamp"] == stamp
        with pytest.raises(ApiException) as caught:
            await _patch(conn, "f", {"metadata": {"finalizers": ["engine/x", "engine/new"]}})
        assert caught.value.status == 422
        await _patch(conn, "f", {"metadata": {"finalizers": None}})
        with pytest.raises(ApiException) as caught:
            await conn.custom.get_namespaced_custom_object(GROUP, "v1", "default", PLURAL, "f")
        assert caught.value.status == 404


async def test_dry_run_patch_and_delete_change_nothing() -> None:
    async with connected() as conn:
        await install_site_crd(conn)
        created = await _create(conn, site("dr"))
        would: dict[str, Any] = await conn.custom.patch_namespaced_custom_object(
            GROUP, "v1", "default", PLURAL, "dr", {"spec": {"size": 8}}, dry_run="All",
            _content_type=MERGE,
        )  # fmt: skip
        assert would["spec"]["size"] == 8
        await conn.custom.delete_namespaced_custom_object(
            GROUP, "v1", "default", PLURAL, "dr", dry_run="All"
        )
        read = await conn.custom.get_namespaced_custom_object(GROUP, "v1", "default", PLURAL, "dr")
        assert read == created


async def test_deleting_the_crd_deletes_its_custom_resources() -> None:
    async with connected() as conn:
        await install_site_crd(conn)
        await _create(conn, site("c1"))
        crds = client.ApiextensionsV1Api(conn.api)
        await crds.delete_custom_resource_definition(SITE_CRD["metadata"]["name"])
        await install_site_crd(conn)
        listed: dict[str, Any] = await conn.custom.list_namespaced_custom_object(
            GROUP, "v1", "default", PLURAL
        )
        assert listed["items"] == []


async def test_crd_with_a_non_structural_schema_is_422() -> None:
    async with connected() as conn:
        bad = json.loads(json.dumps(SITE_CRD))
        bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = {
            "properties": {"size": {"type": "integer"}}
        }
        with pytest.raises(ApiException) as caught:
            await client.ApiextensionsV1Api(conn.api).create_custom_resource_definition(bad)
        assert caught.value.status == 422
