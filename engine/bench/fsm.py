"""`engine bench fsm`: memory per tracked resource (folded state + share of the machine)
and fold speed, over resources that went through a typical lifecycle.

Memory is measured with tracemalloc: each resource's records are built and folded inside
the traced window and then dropped, so what survives is exactly what the engine keeps.
"""

from __future__ import annotations

import gc
import json
import time
import tracemalloc
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from engine.fsm import ResourceState, effect_key, fold
from engine.fsm import events as ev
from engine.fsm.machine import shared_machine
from engine.fsm.observation import Observation
from engine.journal.record import NewEvent, Record

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FsmFigures:
    """One run's figures; the keys of `engine bench fsm --json`."""

    resources: int
    records_per_resource: int
    bytes_per_resource: float
    machine_bytes: int
    folds_per_second: float
    records_per_second: float

    def as_json(self) -> str:
        return json.dumps(asdict(self))


def lifecycle(n: int) -> list[Record]:
    """The records of resource `n` after create, provision (two steps), Ready, status."""
    uid = f"{n:08x}-5f1c-4c8e-9a4b-{n:012x}"
    obs = Observation(
        uid=uid,
        generation=1,
        resource_version=str(1000 + n),
        spec_digest=f"{n:064x}",
        has_finalizer=True,
    )
    provision = effect_key(uid, 1, "provision")
    steps = [effect_key(uid, 1, step) for step in ("apply-configmap", "apply-deployment")]
    events: list[NewEvent] = [
        ev.observed(obs, watch_event="ADDED", spec={"size": n % 7}),
        ev.transition_taken(
            source="Pending", dest="Provisioning", trigger="observed_live", generation=1
        ),
        ev.effect_started(key=provision, name="provision", attempt=1),
    ]
    for key in steps:
        name = key.split(":")[2]
        events += [
            ev.effect_started(key=key, name=name, attempt=1),
            ev.effect_succeeded(key=key, name=name, attempt=1, result={"applied": name}),
        ]
    events += [
        ev.effect_succeeded(key=provision, name="provision", attempt=1, result={"ok": True}),
        ev.transition_taken(
            source="Provisioning", dest="Ready", trigger="provisioned", generation=1
        ),
        ev.status_written(phase="Ready", observed_generation=1, reason=None),
    ]
    stream = f"example.com/Bucket/default/bucket-{n}#{uid}"
    return [
        Record(
            position=n * 100 + i,
            stream=stream,
            stream_version=i,
            type=e.type,
            schema=e.schema,
            at=START + timedelta(milliseconds=i),
            data=json.loads(json.dumps(dict(e.data))),  # decoded as a store would
            idempotency_key=e.idempotency_key,
            trace_id=None,
            span_id=None,
            term=0,
            checksum="",
        )
        for i, e in enumerate(events, start=1)
    ]


def run_bench(*, resources: int) -> FsmFigures:
    """Fold `resources` lifecycles; measure kept memory and fold speed."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    machine = shared_machine.__wrapped__()  # a second, private copy, only to weigh it
    machine_bytes = tracemalloc.get_traced_memory()[0] - before
    del machine
    gc.collect()

    states: list[ResourceState] = []
    records_per_resource = len(lifecycle(0))
    baseline = tracemalloc.get_traced_memory()[0]
    for n in range(resources):
        states.append(fold(lifecycle(n)))
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()

    batches = [lifecycle(n) for n in range(min(resources, 2_000))]
    began = time.perf_counter()
    for records in batches:
        fold(records)
    seconds = time.perf_counter() - began
    if not all(s.state == "Ready" for s in states):
        raise RuntimeError("the benchmark lifecycle did not end Ready: the fold changed")
    shared = machine_bytes / resources
    return FsmFigures(
        resources=resources,
        records_per_resource=records_per_resource,
        bytes_per_resource=round(kept / resources + shared, 1),
        machine_bytes=machine_bytes,
        folds_per_second=round(len(batches) / seconds, 1),
        records_per_second=round(len(batches) * records_per_resource / seconds, 1),
    )


def describe(figures: FsmFigures) -> str:
    """The figures as aligned lines for a terminal."""
    return "\n".join(
        [
            f"resources tracked        {figures.resources}",
            f"bytes per resource       {figures.bytes_per_resource} "
            f"(folded state, plus the machine's {figures.machine_bytes} B shared by all)",
            f"fold                     {figures.folds_per_second} resources/s "
            f"({figures.records_per_resource} records each, "
            f"{figures.records_per_second} records/s)",
        ]
    )
