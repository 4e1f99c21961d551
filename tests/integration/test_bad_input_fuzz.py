"""Bad input (R14, B.6 F1 F4 F5 F6 F7 F12): odd objects never crash the engine nor bloat
its journal. Hypothesis feeds the observation path (observe → journal with redaction →
fold → decide) with generated specs and names; then real objects go through the
embedded API server to a running engine: a schema-invalid one is refused with 422 and
never observed, a spec near 1 MiB and a deeply nested one are journaled as an excerpt,
odd unicode is kept, and the others still converge to Ready."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.apiserver.http.embedded import serve_apiserver
from engine.example.child_names import (
    is_dns1035_label,
    is_label_value,
    is_subdomain,
    label_child,
    label_value,
    subdomain_child,
)
from engine.fsm import events as ev
from engine.fsm.decide import decide
from engine.fsm.fold import fold
from engine.fsm.spec_excerpt import MAX_STORED_SPEC_BYTES
from engine.journal.memory import MemoryJournal
from engine.journal.sqlite import SqliteJournal
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.runtime.reconcile.children import ChildLedger
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.objects import Entry
from engine.runtime.reconcile.observations import ObservationLog, observation_of, stream_of
from engine.runtime.reconcile.operator import CustomResource, Operator
from engine.runtime.reconcile.streams import StreamWriter
from engine.telemetry.logging import escape_text
from engine.watchers import connect_kubeconfig
from tests.integration.reconcile_support import Api, eventually, fast_settings

GROUP, VERSION, KIND, PLURAL = "test.engine.dev", "v1", "Blob", "blobs"
BLOBS = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {"size": {"type": "integer"}, "password": {"type": "string"}},
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}
OPERATOR = Operator(
    resource=CustomResource(GROUP, VERSION, KIND, PLURAL, SCHEMA),
    provision=lambda ctx: _provision(ctx),
    secret_fields=("spec.password",),
)
ODD_TEXT = "e\u0301 é \U0001f469\u200d\U0001f4bb \u202egnp.exe \u200b\ufeff \x1b[31mred\n2nd line"


async def _provision(ctx: Context) -> None:
    async def step(_: str) -> dict[str, Any]:
        return {"size": ctx.spec.get("size")}

    await ctx.effect("record", step)


# ---- the observation path, fed by hypothesis ------------------------------------------

odd_text = st.text(
    st.characters(codec=None, exclude_categories=()), max_size=40
)  # any code point, lone surrogates, controls, bidi and zero-width characters included
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | odd_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=30,
)


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = {"n": value} if level % 2 else [value]
    return value


specs = st.one_of(
    st.dictionaries(odd_text, json_values, max_size=6),
    st.integers(min_value=65, max_value=400).map(lambda depth: {"deep": nested(depth)}),
    st.integers(min_value=MAX_STORED_SPEC_BYTES, max_value=1_400_000).map(
        lambda size: {"blob": "x" * size, "password": "hunter2-canary"}
    ),
)


def primary(name: str, spec: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": "u-1",
            "generation": 1,
            "resourceVersion": "7",
            "labels": labels,
        },
        "spec": spec,
        "status": {},
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=specs,
    name=odd_text,
    labels=st.dictionaries(odd_text, odd_text, max_size=3),
)
@example(spec={}, name="n\ud800", labels={})  # a lone surrogate in the stream's name
async def test_observing_odd_objects_never_raises_and_stays_small(
    spec: dict[str, Any], name: str, labels: dict[str, str]
) -> None:
    journal = MemoryJournal(redact=OPERATOR.secret_fields)
    log = ObservationLog(StreamWriter(journal, ledger=ChildLedger()))
    obj = primary(name, spec, labels)
    stream = stream_of(OPERATOR, obj)
    observation = observation_of(Entry(obj), finalizer=OPERATOR.finalizer_name, child_drift=False)
    assert await log.record(stream, observation, spec=spec, watch_event="ADDED")
    records = await journal.read_stream(stream)
    [record] = records
    encoded = json.dumps(record.data)
    assert len(encoded) < MAX_STORED_SPEC_BYTES + 4096
    assert "hunter2-canary" not in encoded
    assert record.data["spec_digest"] == observation.spec_digest
    state = fold(records)
    decision = decide(state, ev.parse_observation(record), datetime.now(UTC))
    assert decision.trigger is not None or decision.idle
    assert "\n" not in escape_text(name)
    assert "\x1b" not in escape_text(name)
    assert "\u202e" not in escape_text(json.dumps(labels, ensure_ascii=False))


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", fullmatch=True))
@example("0..0")  # empty parts between dots once broke the ConfigMap name
@example("a-.b")
def test_derived_child_names_are_valid_for_any_site_name(name: str) -> None:
    assert is_subdomain(subdomain_child(name, "config"))
    assert is_dns1035_label(label_child(name, "web"))
    assert is_label_value(label_value(name))
    other = name + "x" if len(name) < 253 else name[:-1] + "y"
    assert label_child(name, "web") != label_child(other, "web")


# ---- real objects through the embedded API server to a running engine -----------------


def blob(name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": "default", **metadata},
        "spec": spec,
    }


async def test_real_odd_objects_are_refused_or_handled_and_others_converge(
    tmp_path: Path,
) -> None:
    long_name = "a" * 250 + "-zz"
    objects = {
        "plain": blob("plain", {"size": 1}),
        long_name: blob(long_name, {"size": 2}),
        "unicode": blob(
            "unicode",
            {"size": 3, "message": ODD_TEXT, "password": "pw-canary-77"},
            annotations={"note": ODD_TEXT},
            labels={"ok": "a_b.c-d"},
        ),
        "huge": blob("huge", {"size": 4, "blob": "x" * 1_000_000}),
        "deep": blob("deep", {"size": 5, "deep": nested(150)}),
        # a real API server refuses this label value; the embedded one stores it, so the
        # engine must cope with it when it is observed
        "oddlabel": blob("oddlabel", {"size": 6}, labels={"x": ODD_TEXT}),
    }
    async with (
        serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, server.url)
        crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        status, answer = await api.request("POST", crds, OPERATOR.resource.crd())
        assert status == 201, answer

        async def served() -> bool:
            return (await api.request("GET", BLOBS))[0] == 200

        await eventually(served, "the Blob CRD is served")
        invalid = blob("invalid", {"size": "not a number"})
        status, answer = await api.request("POST", BLOBS, invalid)
        assert status == 422, answer
        client = await connect_kubeconfig(server.kubeconfig_path)
        journal = await SqliteJournal.open(
            tmp_path / "journal.db", synchronous="NORMAL", redact=OPERATOR.secret_fields
        )
        controller = Controller(
            ControllerDeps(
                operator=OPERATOR,
                settings=fast_settings(tmp_path),
                api_client=client,
                journal=journal,
                handle_signals=False,
            )
        )
        task = asyncio.create_task(controller.run())
        try:
            await asyncio.wait_for(controller.ready.wait(), 15)
            for name, body in objects.items():
                status, answer = await api.request("POST", BLOBS, body)
                assert status == 201, (name, str(answer)[:300])

            async def all_ready() -> bool:
                for name in objects:
                    found = await api.get(f"{BLOBS}/{name}") or {}
                    if (found.get("status") or {}).get("phase") != "Ready":
                        return False
                return True

            await eventually(all_ready, "every odd object is Ready", within=30)
            assert not task.done()
            records = [r async for r in journal.read_all()]
        finally:
            await controller.stop()
            await task
            await journal.close()
            await client.close()
    observed = [r for r in records if r.type == ev.OBSERVED]
    observed_names = {r.stream.split("/")[3].rpartition("#")[0] for r in observed}
    assert set(objects) <= observed_names
    assert "invalid" not in observed_names
    biggest = max(len(json.dumps(r.data)) for r in records)
    assert biggest < MAX_STORED_SPEC_BYTES, biggest
    truncated = {
        r.stream.split("/")[3].rpartition("#")[0] for r in observed if r.data.get("spec_truncated")
    }
    assert truncated == {"huge", "deep"}
    unicode_spec = next(r.data["spec"] for r in observed if "/unicode#" in r.stream)
    assert unicode_spec["message"] == ODD_TEXT
    assert unicode_spec["password"] == "<redacted>"
    assert (tmp_path / "journal.db").stat().st_size < 2_000_000
