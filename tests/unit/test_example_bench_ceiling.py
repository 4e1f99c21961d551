"""The ceiling replay plan rebuilt from audit entries (verb and path, no bodies)."""

from __future__ import annotations

import pytest

from engine.bench.ceiling import APPLY, MERGE, replay_plan

SITES = "/apis/example.dev/v1/namespaces/default/sites"
SPEC = {"domain": "a.example.com"}
SITE_A = {"apiVersion": "example.dev/v1", "kind": "Site",
          "metadata": {"name": "a", "namespace": "default", "uid": "uid-a"}}  # fmt: skip


def entry(
    verb: str, resource: str, name: str, path: str, subresource: str = ""
) -> dict[str, object]:
    return {"verb": verb, "group": "", "resource": resource, "subresource": subresource,
            "namespace": "default", "name": name, "code": 200, "path": path}  # fmt: skip


def test_engine_requests_become_requests_of_the_same_shape() -> None:
    entries = [
        entry("list", "sites", "", SITES),
        entry("watch", "sites", "", SITES),
        entry("patch", "sites", "a", f"{SITES}/a"),
        entry("patch", "sites", "a", f"{SITES}/a/status", "status"),
        entry("patch", "configmaps", "a-config", "/api/v1/namespaces/default/configmaps/a-config"),
        entry("patch", "services", "a-web", "/api/v1/namespaces/default/services/a-web"),
        entry("create", "events", "", "/api/v1/namespaces/default/events"),
        entry("patch", "sites", "a", f"{SITES}/a/status", "status"),
    ]
    plan = replay_plan(entries, finalizer="example.dev/finalizer", spec=SPEC, owners={"a": SITE_A})
    assert [(r.method, r.content_type) for r in plan] == [
        ("GET", "application/json"),
        ("PATCH", MERGE),
        ("PATCH", MERGE),
        ("PATCH", APPLY),
        ("PATCH", APPLY),
        ("POST", "application/json"),
        ("PATCH", MERGE),
    ]
    assert plan[1].body == {"metadata": {"finalizers": ["example.dev/finalizer"]}}
    assert [plan[2].body["status"]["phase"], plan[6].body["status"]["phase"]] == [  # type: ignore[index]
        "Provisioning",
        "Ready",
    ]
    assert plan[3].body["metadata"]["name"] == "a-config"  # type: ignore[index]
    assert plan[4].body["metadata"]["name"] == "a-web"  # type: ignore[index]
    assert ("fieldManager", "engine") in plan[3].query


def test_child_applies_carry_the_engines_controller_reference_to_the_replay_site() -> None:
    entries = [
        entry("patch", "configmaps", "a-config", "/api/v1/namespaces/default/configmaps/a-config"),
        entry("patch", "services", "a-web", "/api/v1/namespaces/default/services/a-web"),
    ]
    plan = replay_plan(entries, finalizer="f", spec=SPEC, owners={"a": SITE_A})
    for request in plan:
        metadata = request.body["metadata"]  # type: ignore[index]
        assert metadata["namespace"] == "default"
        assert metadata["ownerReferences"] == [
            {"apiVersion": "example.dev/v1", "kind": "Site", "name": "a", "uid": "uid-a",
             "controller": True, "blockOwnerDeletion": True}
        ]  # fmt: skip


def test_a_child_whose_site_the_replay_server_lacks_is_named() -> None:
    path = "/api/v1/namespaces/default/configmaps/b-config"
    with pytest.raises(ValueError, match="no Site 'b'"):
        replay_plan([entry("patch", "configmaps", "b-config", path)], finalizer="f", spec=SPEC,
                    owners={"a": SITE_A})  # fmt: skip


def test_an_entry_it_cannot_rebuild_is_named() -> None:
    with pytest.raises(ValueError, match="update /api/v1/namespaces/default/secrets/s"):
        replay_plan(
            [entry("update", "secrets", "s", "/api/v1/namespaces/default/secrets/s")],
            finalizer="f",
            spec=SPEC,
            owners={},
        )
