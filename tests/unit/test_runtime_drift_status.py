"""Pure parts of the runtime: drift comparison, the newer-state rule, the status body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.runtime.reconcile.children import ChildLedger, differs
from engine.runtime.reconcile.objects import PrimaryView
from engine.runtime.reconcile.status import status_body

APPLIED: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
        "name": "a-config",
        "namespace": "ns",
        "labels": {"app": "a"},
        "ownerReferences": [{"uid": "owner", "controller": True}],
    },
    "data": {"size": "1"},
}


def _live(**changes: Any) -> dict[str, Any]:
    live: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "a-config",
            "namespace": "ns",
            "uid": "c1",
            "resourceVersion": "7",
            "labels": {"app": "a"},
            "annotations": {"by-hand": "yes"},
            "managedFields": [],
            "ownerReferences": [{"uid": "owner", "controller": True}],
        },
        "data": {"size": "1"},
    }
    live.update(changes)
    return live


@pytest.mark.parametrize(
    ("live", "drifted"),
    [
        pytest.param(_live(), False, id="server-set-and-foreign-fields-ignored"),
        pytest.param(_live(data={"size": "2"}), True, id="applied-value-changed"),
        pytest.param(_live(data={"size": "1", "extra": "x"}), False, id="extra-key-ignored"),
        pytest.param(_live(data={}), True, id="applied-key-removed"),
    ],
)
def test_drift_compares_only_the_fields_the_engine_applied(
    live: dict[str, Any], drifted: bool
) -> None:
    assert differs(live, APPLIED) is drifted


def test_ledger_reports_a_deleted_child_as_drift_until_it_is_applied_again() -> None:
    ledger = ChildLedger()
    ledger.applied("owner", APPLIED, _live())
    assert not ledger.drift("owner")
    deleted = _live()
    deleted["metadata"] = {**deleted["metadata"], "resourceVersion": "9"}
    assert ledger.observed(deleted, deleted=True) == "owner"
    assert ledger.drift("owner")
    recreated = _live()
    recreated["metadata"] = {**recreated["metadata"], "uid": "c2", "resourceVersion": "12"}
    ledger.applied("owner", APPLIED, recreated)
    assert not ledger.drift("owner")
    # a late DELETED of the old child (older resourceVersion) does not win
    ledger.observed(deleted, deleted=True)
    assert not ledger.drift("owner")


def _state(version: str, uid: str = "u") -> dict[str, Any]:
    return {"metadata": {"name": "a", "namespace": "ns", "uid": uid, "resourceVersion": version}}


def test_the_view_keeps_its_own_write_until_the_watch_delivers_it() -> None:
    view = PrimaryView()
    view.observed(_state("4"))
    written = _state("8")
    view.update(written)
    assert view.observed(_state("5")).obj is written  # from before the write: loses
    delivered = _state("8")
    assert view.observed(delivered).obj is delivered  # the write's own event
    later = _state("9")
    assert view.observed(later).obj is later
    assert view.key_of_uid("u") == "ns/a"


def test_the_view_orders_by_the_watch_not_by_the_number() -> None:
    # an API server restored from a backup sends smaller resourceVersions: still newer
    view = PrimaryView()
    view.update(_state("900"))
    view.observed(_state("900"))
    restored = _state("12")
    assert view.observed(restored).obj is restored
    written = _state("13")
    assert view.update(written).obj is written
    assert view.observed(_state("12")).obj is written  # a repeat of the older event


def test_a_write_answer_the_watch_already_delivered_is_not_news() -> None:
    view = PrimaryView()
    view.update(_state("3"))
    view.observed(_state("3"))
    view.observed(_state("5"))  # someone else wrote after
    assert view.update(_state("3")).obj["metadata"]["resourceVersion"] == "5"


def test_a_relist_ends_the_wait_for_a_write_and_a_deletion_of_the_uid_wins() -> None:
    view = PrimaryView()
    view.update(_state("7"))
    listed = _state("6")
    assert view.observed(listed, listed=True).obj is listed
    gone = view.observed(_state("6"), exists=False)
    assert not gone.exists
    assert not view.update(_state("8")).exists
    successor = _state("2", uid="u2")
    assert view.observed(successor).obj is successor


def test_status_keeps_transition_times_of_conditions_whose_status_did_not_change() -> None:
    first = status_body(
        phase="Provisioning",
        observed_generation=1,
        reason=None,
        current=None,
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    second = status_body(
        phase="Ready",
        observed_generation=1,
        reason=None,
        current=first,
        now=datetime(2026, 1, 2, tzinfo=UTC),
    )
    times = {c["type"]: c["lastTransitionTime"] for c in second["conditions"]}
    assert times == {
        "Ready": "2026-01-02T00:00:00Z",
        "Provisioning": "2026-01-02T00:00:00Z",
        "Failed": "2026-01-01T00:00:00Z",
    }
    failed = status_body(
        phase="Failed",
        observed_generation=2,
        reason="PermanentError: size 13 is reserved",
        current=second,
        now=datetime(2026, 1, 3, tzinfo=UTC),
    )
    condition = next(c for c in failed["conditions"] if c["type"] == "Failed")
    assert condition["reason"] == "PermanentError"
    assert condition["message"] == "PermanentError: size 13 is reserved"
