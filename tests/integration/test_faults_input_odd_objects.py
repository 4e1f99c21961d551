"""Bad input past the observation path (B.6 F2, F3, F11): objects no real API server would
serve (no spec, `spec: null`, a spec that is a list, `status: null`, no uid, no
generation, a wrong type, an integer above 2^63, NaN and Infinity, which the watch's JSON
decoder accepts) go through the engine's own reconcile loop (`MemoryLoop`: the live
`Observer`, `Reconciler`, `StreamWriter` and effect runner, with no server to refuse them
first). Each ends with a condition and an Event, or, with no uid, is never journaled;
nothing raises, and a plain object beside them converges. Then 10,000 generated and
mutated objects go through the observe and decide path."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from engine.effects import PermanentError
from engine.fsm import events as ev
from engine.fsm.decide import decide
from engine.fsm.fold import fold
from engine.journal.codec import encode_event
from engine.journal.memory import MemoryJournal
from engine.runtime.reconcile.children import ChildLedger
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.memory_loop import MemoryLoop
from engine.runtime.reconcile.objects import Entry
from engine.runtime.reconcile.observations import ObservationLog, observation_of, stream_of
from engine.runtime.reconcile.operator import CustomResource, Operator
from engine.runtime.reconcile.streams import StreamWriter
from engine.watchers import ChangeType

SCHEMA: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
CALLS: list[str] = []


async def provision(ctx: Context) -> None:
    size = ctx.spec.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 2**63:
        raise PermanentError(f"spec.size must be an integer from 0 to 2^63 - 1, got {size!r}")

    async def register(key: str) -> dict[str, Any]:
        CALLS.append(key)
        return {"size": size}

    await ctx.effect("register", register)


OPERATOR = Operator(
    resource=CustomResource("odd.engine.dev", "v1", "Odd", "odds", SCHEMA), provision=provision
)
ODD: dict[str, dict[str, Any]] = {
    "no-spec": {},
    "null-spec": {"spec": None},
    "list-spec": {"spec": [1, 2]},
    "wrong-type": {"spec": {"size": "many"}},
    "above-int64": {"spec": {"size": 2**64}},
    "nan": {"spec": {"size": math.nan, "ratio": math.nan}},
    "infinity": {"spec": {"size": 1, "limit": -math.inf}},  # size fine: provisioned
}


def odd_object(name: str, fields: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "odd.engine.dev/v1",
        "kind": "Odd",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", **metadata},
        **fields,
    }


async def test_odd_objects_end_with_a_condition_and_an_event_and_a_plain_one_converges() -> None:
    CALLS.clear()
    loop = MemoryLoop(OPERATOR)
    objects = {name: odd_object(name, fields, generation=1) for name, fields in ODD.items()}
    objects["null-status"] = odd_object("null-status", {"spec": {"size": 1}, "status": None})
    objects["no-generation"] = odd_object("no-generation", {"spec": {"size": 2}})
    objects["plain"] = odd_object("plain", {"spec": {"size": 3}}, generation=1)
    no_uid = odd_object("no-uid", {"spec": {"size": 4}})
    del no_uid["metadata"]["uid"]
    for obj in [*objects.values(), no_uid]:
        loop.cluster.put(loop.kind, obj)
        await loop.watch(f"default/{obj['metadata']['name']}", ChangeType.ADDED)
    for name in objects:
        await loop.settle(f"default/{name}")

    phases = {name: (await loop.state(f"default/{name}")).state for name in objects}
    refused = {"no-spec", "null-spec", "list-spec", "wrong-type", "above-int64", "nan"}
    assert phases == {name: "Failed" if name in refused else "Ready" for name in objects}
    for name in objects:
        status = loop.cluster.get(loop.kind, "default", name)["status"]  # type: ignore[index]
        [ready] = [c for c in status["conditions"] if c["type"] == "Ready"]
        assert ready["status"] == ("False" if name in refused else "True"), (name, ready)
    warned = {e.involved.name for e in loop.cluster.events if e.warning}
    assert refused <= warned
    list_spec = await loop.records("default/list-spec")
    assert any("not an object" in json.dumps(r.data) for r in list_spec)
    # NaN and Infinity are not JSON: the Observed record keeps an excerpt, not the spec
    observed = [r for r in await loop.records("default/nan") if r.type == ev.OBSERVED]
    assert observed
    assert all(r.data["spec"] is None for r in observed)
    assert all(set(r.data["spec_fields"]) == {"ratio", "size"} for r in observed)
    assert "no-uid" not in json.dumps(sorted(await loop.journal.streams()))
    assert sorted(k.split(":")[0] for k in CALLS) == sorted(
        f"uid-{name}" for name in objects if name not in refused
    )


def mutated(rng: random.Random, n: int) -> dict[str, Any]:
    """A schema-guided object (`size` an integer, `message` text), then a mutation."""
    obj = odd_object(f"gen-{n}", {"spec": {"size": rng.randrange(100), "message": "hi"}})
    obj["metadata"].update(generation=1 + rng.randrange(3), resourceVersion=str(n))
    spec = obj["spec"]
    match rng.randrange(12):
        case 0:
            del obj["spec"]
        case 1:
            obj["spec"] = None
        case 2:
            obj["spec"] = rng.choice([[1], "text", 7, True])
        case 3:
            spec["size"] = rng.choice(["7", 2**70, -(2**64), 1.5, None, [], {}])
        case 4:
            spec["size"] = rng.choice([math.nan, math.inf, -math.inf])
        case 5:
            spec["message"] = "".join(chr(rng.randrange(0x110000)) for _ in range(8))
        case 6:
            obj["status"] = rng.choice([None, "text", [], {"phase": 3}])
        case 7:
            obj["metadata"]["generation"] = rng.choice([None, "2", -1])
        case 8:
            spec[rng.choice(["", "\x00", "a.b", "\u202e"])] = {"deep": [[[]]]}
        case 9:
            obj["metadata"]["deletionTimestamp"] = rng.choice(["2026-01-01T00:00:00Z", "soon"])
        case 10:
            obj["metadata"]["finalizers"] = rng.choice([None, ["odd.engine.dev/finalizer"], [7]])
        case _:
            pass
    return obj


async def test_ten_thousand_generated_and_mutated_objects_are_observed_and_decided() -> None:
    """Each object: its observation, the `Observed` event the journal's encoder must
    accept, and a decision; one in fifty also journaled and folded from the journal."""
    journal = MemoryJournal(redact=OPERATOR.secret_fields)
    log = ObservationLog(StreamWriter(journal, ledger=ChildLedger()))
    rng, now, new = random.Random(11), datetime.now(UTC), fold([])
    triggers: Counter[str] = Counter()
    for n in range(10_000):
        obj = mutated(rng, n)
        observation = observation_of(
            Entry(obj), finalizer=OPERATOR.finalizer_name, child_drift=False
        )
        spec = obj.get("spec") or {}
        encode_event(ev.observed(observation, watch_event="ADDED", spec=spec))
        decision = decide(new, observation, now)
        triggers[decision.trigger or "idle"] += 1
        if n % 50 == 0:
            stream = stream_of(OPERATOR, obj)
            assert await log.record(stream, observation, spec=spec, watch_event="ADDED")
            records = await journal.read_stream(stream)
            assert decide(fold(records), ev.parse_observation(records[-1]), now) == decision
    assert sum(triggers.values()) == 10_000
    assert triggers["observed_live"] > 5_000, triggers  # the unmutated and mildly odd ones
    assert triggers["deletion_requested"] > 0, triggers


async def test_generated_odd_objects_through_the_reconcile_loop_leave_a_plain_one_converging() -> (
    None
):
    """120 of the generated objects, then a plain one, all reconciled by one loop."""
    CALLS.clear()
    loop = MemoryLoop(OPERATOR)
    rng = random.Random(12)
    objects = [mutated(rng, n) for n in range(120)]
    objects.append(odd_object("plain", {"spec": {"size": 3}}, generation=1))
    for obj in objects:
        obj["metadata"].pop("resourceVersion", None)  # the cluster's versions, not the generator's
        loop.cluster.put(loop.kind, obj)
        await loop.watch(f"default/{obj['metadata']['name']}", ChangeType.ADDED)
    for obj in objects:
        if obj["metadata"].get("uid"):
            await loop.settle(f"default/{obj['metadata']['name']}", max_turns=8)
    states = Counter(
        [(await loop.state(f"default/{o['metadata']['name']}")).state for o in objects]
    )
    assert (await loop.state("default/plain")).state == "Ready", states
    assert states["Ready"] > 40, states
    print(dict(states))
    assert "uid-plain:1:register" in CALLS
