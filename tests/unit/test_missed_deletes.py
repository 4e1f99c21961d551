"""Which live streams a completed first list lacks (`missed_deletes.absent`, pure), and
the object a missed deletion carries (`gone_object`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine import Context, CustomResource, Operator
from engine.journal.record import Record
from engine.runtime.manager.missed_deletes import absent, gone_object
from engine.runtime.reconcile.observations import spec_digest, spec_digest_of
from engine.watchers import ChangeType, ObjectCache

PREFIX = "test.engine.dev/Widget"
WIDGET = CustomResource(
    group="test.engine.dev", version="v1", kind="Widget", plural="widgets",
    schema={"type": "object", "properties": {"spec": {"type": "object"}}},
)  # fmt: skip


async def _step(ctx: Context) -> None:
    return None


def _stream(namespace: str, name: str, uid: str) -> str:
    return f"{PREFIX}/{namespace}/{name}#{uid}"


def _observed(stream: str, **data: Any) -> Record:
    payload = {"exists": True, "generation": 2, "resource_version": "7", **data}
    return Record(1, stream, 1, "Observed", 1, datetime.now(UTC), payload, None, None, None, 0, "")


def _cache(*objects: tuple[str, str, str]) -> ObjectCache:
    cache = ObjectCache()
    for namespace, name, uid in objects:
        metadata = {"namespace": namespace, "name": name, "uid": uid, "resourceVersion": "1"}
        cache.apply(ChangeType.ADDED, {"metadata": metadata})
    return cache


def test_only_live_streams_whose_uid_the_list_lacks_are_missed() -> None:
    listed = _stream("default", "listed", "u1")
    gone = _stream("default", "gone", "u2")
    replaced = _stream("default", "again", "u3")
    journaled_gone = _stream("default", "seen-going", "u4")
    unknown = _stream("default", "in-flight", "u5")
    elsewhere = _stream("other", "elsewhere", "u6")
    cache = _cache(("default", "listed", "u1"), ("default", "again", "u9"))
    streams = [
        (listed, _observed(listed)),
        (gone, _observed(gone)),
        (replaced, _observed(replaced)),
        (journaled_gone, _observed(journaled_gone, exists=False)),
        (unknown, None),
        (elsewhere, _observed(elsewhere)),
    ]
    missed = absent(streams, cache, namespaces=("default",))
    assert [(m.text, m.replaced) for m in missed] == [
        (gone, False),
        (replaced, True),
        (unknown, False),
    ]
    everywhere = absent(streams, cache)
    assert elsewhere in [m.text for m in everywhere]


def test_a_missed_deletion_carries_the_last_journaled_state() -> None:
    operator = Operator(resource=WIDGET, provision=_step, finalize=_step)
    stream = _stream("default", "gone", "u2")
    record = _observed(
        stream, has_finalizer=True, spec={"size": 3}, status_phase="Ready",
        status_observed_generation=2,
    )  # fmt: skip
    (missed,) = absent([(stream, record)], _cache())
    obj = gone_object(operator, missed, record)
    assert obj["metadata"] == {
        "name": "gone",
        "namespace": "default",
        "uid": "u2",
        "generation": 2,
        "resourceVersion": "7",
        "finalizers": [operator.finalizer_name],
    }
    assert obj["spec"] == {"size": 3}
    assert obj["status"] == {"phase": "Ready", "observedGeneration": 2}
    assert (obj["apiVersion"], obj["kind"]) == ("test.engine.dev/v1", "Widget")


def test_a_missed_deletion_keeps_the_digest_taken_of_the_real_spec() -> None:
    # the journal holds the spec redacted; the digest was taken live, of the real one
    # (D11: with the redacted spec's digest, replay took the generation's spec for changed)
    operator = Operator(resource=WIDGET, provision=_step, finalize=_step)
    stream = _stream("default", "gone", "u3")
    live = spec_digest({"password": "hunter2"})
    record = _observed(stream, spec={"password": "<redacted>"}, spec_digest=live)
    (missed,) = absent([(stream, record)], _cache())
    obj = gone_object(operator, missed, record)
    assert spec_digest_of(obj) == live != spec_digest(obj["spec"])
