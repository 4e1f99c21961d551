"""Bad input over real HTTP to a running engine (B.6 F8, F9, F10): duplicate JSON fields
and an unknown field in a request body, a handler asking for a child in another
namespace, children whose owner is missing or in another namespace, and annotations near
the 256 KiB limit. The embedded API server and the engine's own watches decide what
each object is; the engine reconciles what the server stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.effects import api_json
from engine.fsm import events as ev
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.operator import ChildKind, CustomResource, Operator
from tests.integration.reconcile_support import (
    GROUP,
    KIND,
    NAMESPACE,
    PLURAL,
    SCHEMA,
    VERSION,
    WIDGETS,
    Engine,
    ExternalService,
    eventually,
    running_engine,
)

OTHER = "other"
ANNOTATIONS_LIMIT = 256 * 1024
"""Kubernetes refuses an object whose annotations total more than this (keys + values)."""


def operator(service: ExternalService) -> Operator:
    """One ConfigMap child, in `spec.childNamespace` when the spec names one, and one
    external call."""

    async def provision(ctx: Context) -> None:
        metadata: dict[str, Any] = {"name": f"{ctx.name}-config"}
        if "childNamespace" in ctx.spec:
            metadata["namespace"] = ctx.spec["childNamespace"]
        await ctx.apply_child(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": metadata,
                "data": {"size": str(ctx.spec["size"])},
            }
        )

        async def register(key: str) -> dict[str, Any]:
            service.call(key)
            return {"registered": ctx.name}

        await ctx.effect("register", register)

    schema = json.loads(json.dumps(SCHEMA))
    schema["properties"]["spec"]["properties"]["childNamespace"] = {"type": "string"}
    return Operator(
        resource=CustomResource(GROUP, VERSION, KIND, PLURAL, schema),
        provision=provision,
        children=(ChildKind("", "v1", "ConfigMap", "configmaps"),),
    )


def widget(name: str, spec: str, annotations: dict[str, str] | None = None) -> bytes:
    """A Widget's JSON body with `spec` as raw JSON text (so it may repeat a field)."""
    metadata = {"name": name, "namespace": NAMESPACE, "annotations": annotations or {}}
    head = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": metadata}
    return (json.dumps(head)[:-1] + f', "spec": {spec}}}').encode()


async def post_raw(engine: Engine, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    session = engine.api._session
    headers = {"Content-Type": "application/json"}
    async with session.post(engine.api.url + path, data=body, headers=headers) as answer:
        return answer.status, await answer.json(content_type=None)


def owned_configmap(name: str, namespace: str, owner_name: str, owner_uid: str) -> dict[str, Any]:
    reference = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": owner_name,
        "uid": owner_uid,
        "controller": True,
    }
    metadata = {"name": name, "namespace": namespace, "ownerReferences": [reference]}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {}}


async def test_duplicate_and_unknown_fields_foreign_owners_and_big_annotations(
    tmp_path: Path,
) -> None:
    service = ExternalService()
    big = {f"example.com/note-{i}": "n" * 50_000 for i in range(5)}  # 250 KB of 256 KiB
    async with running_engine(tmp_path, service=service, operator=operator(service)) as engine:
        api = engine.api
        status, _ = await api.request(
            "POST", "/api/v1/namespaces", {"metadata": {"name": OTHER}, "apiVersion": "v1"}
        )
        assert status == 201
        # F8: a repeated field: refused under strict field validation, else the last wins
        repeated = widget("dup", '{"size": 1, "size": 2, "colour": "red"}')
        status, refused = await post_raw(engine, f"{WIDGETS}?fieldValidation=Strict", repeated)
        assert status == 400, refused
        assert 'duplicate field "size"' in refused["message"]
        status, dup = await post_raw(engine, WIDGETS, repeated)
        assert status == 201, dup
        status, made = await post_raw(engine, WIDGETS, widget("elsewhere", '{"size": 3, '
                                      f'"childNamespace": "{OTHER}"}}'))  # fmt: skip
        assert status == 201, made
        status, annotated = await post_raw(engine, WIDGETS, widget("annotated", '{"size": 4}', big))
        assert status == 201, str(annotated)[:300]
        # F9: children of an owner that does not exist, and of one in another namespace
        orphan = owned_configmap("orphan", NAMESPACE, "ghost", "no-such-uid")
        foreign = owned_configmap("foreign", OTHER, "dup", dup["metadata"]["uid"])
        for child in (orphan, foreign):
            namespace = child["metadata"]["namespace"]
            status, answer = await api.request(
                "POST", f"/api/v1/namespaces/{namespace}/configmaps", child
            )
            assert status == 201, answer

        async def all_ready() -> bool:
            phases = [await engine.phase(n) for n in ("dup", "elsewhere", "annotated")]
            return phases == ["Ready"] * 3

        await eventually(all_ready, "the three Widgets Ready")
        stored = await engine.widget("dup")
        dup_config = await engine.config("dup")
        elsewhere = await engine.widget("elsewhere")
        elsewhere_config = await engine.config("elsewhere")
        in_other = await api.get(f"/api/v1/namespaces/{OTHER}/configmaps/elsewhere-config")
        annotated_now = await engine.widget("annotated")
        annotated_config = await engine.config("annotated")
        records = [r async for r in engine.journal.read_all()]
        calls = dict(service.calls)
        assert engine.controller.ready.is_set()

    assert stored is not None
    assert dup_config is not None
    assert stored["spec"] == {"size": 2, "message": "hello", "external": True}  # pruned
    assert dup_config["data"]["size"] == "2"
    observed_dup = [
        r.data["spec"] for r in records if r.type == ev.OBSERVED and "/dup#" in r.stream
    ]
    assert observed_dup
    assert all(spec == stored["spec"] for spec in observed_dup)
    # the engine's own decoder takes the last of a repeated field on both of its paths
    assert api_json.loads(b'{"size": 1, "size": 2}') == {"size": 2}
    assert api_json.loads(b'{"size": 1, "size": 2, "n": 1' + b"0" * 30 + b"}")["size"] == 2

    assert elsewhere is not None
    assert elsewhere_config is not None, "the child is in its owner's namespace"
    assert in_other is None, "no child in another namespace than its owner's"
    [reference] = elsewhere_config["metadata"]["ownerReferences"]
    assert reference["uid"] == elsewhere["metadata"]["uid"]
    assert sorted(calls.values()) == [1, 1, 1], "the foreign children re-drove nothing"

    assert annotated_now is not None
    assert annotated_config is not None
    annotations = annotated_now["metadata"]["annotations"]
    assert annotations == big, "the engine added or changed no annotation"
    assert sum(len(k) + len(v) for k, v in annotations.items()) < ANNOTATIONS_LIMIT
    assert not annotated_config["metadata"].get("annotations")
