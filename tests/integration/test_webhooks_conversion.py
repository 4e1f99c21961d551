"""Conversion through the engine's /convert over HTTPS (ConversionReview v1), and round
trips through the hub that prove no field is lost between v1 and v1alpha1; a converter
that drops a field fails the review naming the field, journaled, and the server goes on."""

from __future__ import annotations

import copy
import json
import ssl
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ServedVersion
from engine.journal.location import open_journal
from engine.webhooks.certificates import SelfSigned
from engine.webhooks.conversion_review import ConversionError, convert_object
from engine.webhooks.decisions import CONVERSION_FAILED, webhook_stream
from engine.webhooks.server import WebhookServerDeps, serve_webhooks
from tests.support.quota_operator import NOTE_ANNOTATION, OPERATOR, QUOTA, v1_to_v1alpha1

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
# an empty labels or annotations map is no map at all to the API server (omitempty)
labels = st.dictionaries(
    st.text(alphabet="abcdefgh", min_size=1, max_size=6), texts, min_size=1, max_size=3
)


@st.composite
def v1_quotas(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "minReplicas": draw(st.integers(0, 10_000)),
        "maxReplicas": draw(st.integers(0, 10_000)),
    }
    for field in ("tier", "note", "token"):
        if draw(st.booleans()):
            spec[field] = draw(texts)
    metadata: dict[str, Any] = {
        "name": draw(names),
        "namespace": "default",
        "uid": draw(st.uuids()).hex,
        "resourceVersion": "7",
        "generation": draw(st.integers(1, 50)),
    }
    if draw(st.booleans()):
        metadata["labels"] = draw(labels)
    if draw(st.booleans()):
        metadata["annotations"] = draw(labels)
    obj: dict[str, Any] = {
        "apiVersion": "webhooks.test/v1",
        "kind": "Quota",
        "metadata": metadata,
        "spec": spec,
    }
    if draw(st.booleans()):
        obj["status"] = {"phase": draw(st.sampled_from(["Pending", "Ready"]))}
    return obj


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v1_quotas())
def test_v1_to_v1alpha1_and_back_loses_no_field(obj: dict[str, Any]) -> None:
    spoke = convert_object(QUOTA, obj, "v1alpha1")
    assert spoke["apiVersion"] == "webhooks.test/v1alpha1"
    assert "minReplicas" not in spoke["spec"]
    assert spoke["spec"]["range"] == f"{obj['spec']['minReplicas']}-{obj['spec']['maxReplicas']}"
    assert convert_object(QUOTA, spoke, "v1") == obj


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v1_quotas())
def test_v1alpha1_to_v1_and_back_loses_no_field(hub: dict[str, Any]) -> None:
    hub["metadata"].get("annotations", {}).pop(NOTE_ANNOTATION, None)
    obj = v1_to_v1alpha1(hub) | {"apiVersion": "webhooks.test/v1alpha1"}
    stored = convert_object(QUOTA, obj, "v1")
    assert convert_object(QUOTA, stored, "v1alpha1") == obj


def _drops_the_note(obj: Any) -> dict[str, Any]:
    converted = v1_to_v1alpha1(obj)
    converted["metadata"].pop("annotations", None)
    return converted


def _renames(obj: Any) -> dict[str, Any]:
    converted = v1_to_v1alpha1(obj)
    converted["metadata"]["name"] = "else"
    return converted


async def test_conversion_reviews_over_https_and_a_lossy_converter_fails_naming_the_field(
    tmp_path: Path,
) -> None:
    journal = await open_journal(tmp_path / "journal.db")
    spoke = QUOTA.served_versions[0]
    lossy = replace(
        OPERATOR,
        resource=replace(
            QUOTA,
            served_versions=(
                replace(spoke, from_hub=_drops_the_note),
                ServedVersion("v2", spoke.schema, spoke.to_hub, _renames),
            ),
        ),
    )
    obj = {
        "apiVersion": "webhooks.test/v1",
        "kind": "Quota",
        "metadata": {"name": "q", "namespace": "default", "uid": "u1"},
        "spec": {"minReplicas": 1, "maxReplicas": 4, "note": "keep me"},
    }

    def body(desired: str, *objects: Any) -> dict[str, Any]:
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {
                "uid": "r-" + desired,
                "desiredAPIVersion": desired,
                "objects": list(objects),
            },
        }

    try:
        for operator, certs in ((OPERATOR, "a"), (lossy, "b")):
            deps = WebhookServerDeps(
                operator=operator, journal=journal, certificates=SelfSigned(tmp_path / certs)
            )
            async with serve_webhooks(deps) as running:
                trust = ssl.create_default_context(cadata=running.ca_pem.decode())
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as s:

                    async def post(payload: Any) -> dict[str, Any]:
                        async with s.post(running.url + "/convert", json=payload) as answer:
                            assert answer.status == 200
                            reply: dict[str, Any] = await answer.json()
                            return reply["response"]

                    if operator is OPERATOR:
                        answer = await post(body("webhooks.test/v1alpha1", obj, copy.deepcopy(obj)))
                        assert answer["uid"] == "r-webhooks.test/v1alpha1"
                        assert answer["result"] == {"status": "Success"}
                        first, _ = answer["convertedObjects"]
                        assert first["spec"] == {"range": "1-4"}
                        assert first["metadata"]["annotations"] == {NOTE_ANNOTATION: "keep me"}
                        back = await post(body("webhooks.test/v1", first))
                        assert back["convertedObjects"] == [obj]
                        unknown = await post(body("webhooks.test/v9", obj))
                        assert unknown["result"]["status"] == "Failure"
                        assert "not a served version" in unknown["result"]["message"]
                        continue
                    answer = await post(body("webhooks.test/v1alpha1", obj))
                    assert answer["result"]["status"] == "Failure"
                    assert answer["convertedObjects"] == []
                    assert "loses spec.note" in answer["result"]["message"]
                    renamed = await post(body("webhooks.test/v2", obj))
                    assert (
                        "metadata other than labels and annotations changed"
                        in (renamed["result"]["message"])
                    )
                    async with s.post(running.url + "/convert", data=b"[]") as bad:
                        assert bad.status == 400
                    again = await post(body("webhooks.test/v1", obj))
                    assert again["result"] == {"status": "Success"}
        stream = webhook_stream(group="webhooks.test", kind="Quota", namespace="default", name="q")
        failed = [r.data for r in await journal.read_stream(stream) if r.type == CONVERSION_FAILED]
        assert [(f["from"], f["to"]) for f in failed] == [("v1", "v1alpha1"), ("v1", "v2")]
    finally:
        await journal.close()


def test_a_converter_that_raises_is_a_conversion_error() -> None:
    def broken(obj: Any) -> dict[str, Any]:
        raise ValueError("no range")

    resource = replace(QUOTA, served_versions=(replace(QUOTA.served_versions[0], to_hub=broken),))
    obj = {
        "apiVersion": "webhooks.test/v1alpha1",
        "kind": "Quota",
        "metadata": {"name": "q"},
        "spec": {"range": "1-2"},
    }
    with pytest.raises(ConversionError, match="the converter raised ValueError: no range"):
        convert_object(resource, obj, "v1")
    assert json.dumps(convert_object(resource, obj, "v1alpha1")) == json.dumps(obj)
