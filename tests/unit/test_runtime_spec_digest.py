"""The spec digest of an object: remembered per (uid, resourceVersion), never stale."""

from __future__ import annotations

from engine.runtime.reconcile.observations import spec_digest, spec_digest_of


def site(spec: dict[str, object], *, uid: str = "u", version: str = "1") -> dict[str, object]:
    return {"metadata": {"uid": uid, "resourceVersion": version}, "spec": spec}


def test_the_digest_of_an_object_is_the_digest_of_its_spec() -> None:
    assert spec_digest_of(site({"a": 1, "b": [1, 2]})) == spec_digest({"b": [1, 2], "a": 1})
    assert spec_digest_of({"metadata": {}, "spec": {"x": "y"}}) == spec_digest({"x": "y"})
    assert spec_digest_of({"metadata": {"uid": "u"}}) == spec_digest({})


def test_a_different_spec_under_the_same_version_gets_its_own_digest() -> None:
    first = spec_digest_of(site({"replicas": 1}, uid="same", version="7"))
    second = spec_digest_of(site({"replicas": 2}, uid="same", version="7"))
    assert first == spec_digest({"replicas": 1})
    assert second == spec_digest({"replicas": 2})
    assert spec_digest_of(site({"replicas": 1}, uid="same", version="7")) == first


def test_the_digests_kept_are_bounded_and_the_oldest_go_first() -> None:
    from engine.runtime.reconcile import observations

    kept = observations._DIGESTS_KEPT
    for n in range(kept + 10):
        spec_digest_of(site({"n": n}, uid=f"bound-{n}", version="1"))
    remembered = observations._digests
    assert len(remembered) == kept
    assert ("bound-0", "1") not in remembered  # the oldest went first
    assert ("bound-9", "1") not in remembered
    assert (f"bound-{kept + 9}", "1") in remembered  # the newest stays
    assert remembered[(f"bound-{kept + 9}", "1")][1] == spec_digest({"n": kept + 9})
