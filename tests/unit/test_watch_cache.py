"""The reflector cache and the differences a relist reports."""

from __future__ import annotations

from typing import Any

import pytest

from engine.watchers.cache import ObjectCache, object_key
from engine.watchers.change import ChangeType


def obj(
    name: str, rv: str, *, uid: str | None = None, namespace: str = "default"
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": rv,
            "uid": uid or f"uid-{name}",
        }
    }


def cache_of(*objects: dict[str, Any]) -> ObjectCache:
    cache = ObjectCache()
    for item in objects:
        cache.apply(ChangeType.ADDED, item)
    return cache


def summary(differences: list[Any]) -> list[tuple[str, str, str]]:
    return [
        (d.type.value, d.obj["metadata"]["name"], d.obj["metadata"]["resourceVersion"])
        for d in differences
    ]


def test_relist_into_empty_cache_adds_every_object_in_list_order() -> None:
    differences = ObjectCache().relist_differences([obj("b", "2"), obj("a", "1")])
    assert summary(differences) == [("added", "b", "2"), ("added", "a", "1")]


def test_relist_reports_nothing_when_every_resource_version_is_unchanged() -> None:
    cache = cache_of(obj("a", "1"), obj("b", "2"))
    assert cache.relist_differences([obj("a", "1"), obj("b", "2")]) == []


def test_relist_reports_only_real_differences() -> None:
    cache = cache_of(obj("same", "1"), obj("changed", "2"), obj("gone", "3"))
    listed = [obj("same", "1"), obj("changed", "7"), obj("new", "8")]
    assert summary(cache.relist_differences(listed)) == [
        ("modified", "changed", "7"),
        ("added", "new", "8"),
        ("deleted", "gone", "3"),
    ]


def test_relist_reports_a_recreated_object_as_deleted_then_added() -> None:
    cache = cache_of(obj("a", "1", uid="old"))
    differences = cache.relist_differences([obj("a", "5", uid="new")])
    assert [(d.type, d.obj["metadata"]["uid"]) for d in differences] == [
        (ChangeType.DELETED, "old"),
        (ChangeType.ADDED, "new"),
    ]


def test_relist_of_one_namespace_leaves_other_namespaces_alone() -> None:
    cache = cache_of(obj("a", "1", namespace="one"), obj("b", "2", namespace="two"))
    assert summary(cache.relist_differences([], namespace="one")) == [("deleted", "a", "1")]


def test_relist_does_not_modify_the_cache() -> None:
    cache = cache_of(obj("a", "1"))
    cache.relist_differences([obj("b", "2")])
    assert [o["metadata"]["name"] for o in cache.objects()] == ["a"]


def test_apply_stores_modifications_and_removes_deletions() -> None:
    cache = cache_of(obj("a", "1"))
    cache.apply(ChangeType.MODIFIED, obj("a", "2"))
    assert cache.get("default", "a") == obj("a", "2")
    cache.apply(ChangeType.DELETED, obj("a", "3"))
    assert cache.get("default", "a") is None
    assert len(cache) == 0


def test_apply_refuses_an_object_without_a_name() -> None:
    with pytest.raises(ValueError, match=r"metadata\.name"):
        ObjectCache().apply(ChangeType.ADDED, {"metadata": {}})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"metadata": {"name": "a", "namespace": "ns"}}, ("ns", "a"), id="namespaced"),
        pytest.param({"metadata": {"name": "node-1"}}, ("", "node-1"), id="cluster-scoped"),
        pytest.param({"metadata": {"name": ""}}, None, id="empty-name"),
        pytest.param({"metadata": "x"}, None, id="metadata-not-a-mapping"),
        pytest.param({}, None, id="no-metadata"),
    ],
)
def test_object_key(value: dict[str, Any], expected: tuple[str, str] | None) -> None:
    assert object_key(value) == expected


def test_objects_of_a_namespace_are_sorted_by_name() -> None:
    cache = cache_of(obj("b", "1", namespace="x"), obj("a", "2", namespace="x"), obj("c", "3"))
    assert [o["metadata"]["name"] for o in cache.objects("x")] == ["a", "b"]
    assert len(cache.objects()) == 3


def test_a_list_taken_page_by_page_reports_what_one_relist_reports() -> None:
    cache = cache_of(obj("a", "1"), obj("b", "1"), obj("c", "1"), obj("e", "1"))
    pages = [[obj("a", "2"), obj("c", "1")], [obj("d", "1"), obj("e", "3", uid="new")]]
    whole = cache.relist_differences([item for page in pages for item in page])
    seen: set[tuple[str, str]] = set()
    by_page: list[Any] = []
    for page in pages:
        differences = cache.listed_differences(page, seen)
        for difference in differences:  # delivered: the watcher applies each page's changes
            cache.apply(difference.type, difference.obj)
        by_page += differences
    by_page += cache.absent_from(seen)
    assert (
        summary(by_page)
        == summary(whole)
        == [
            ("modified", "a", "2"),
            ("added", "d", "1"),
            ("deleted", "e", "1"),
            ("added", "e", "3"),
            ("deleted", "b", "1"),
        ]
    )
