"""PATCH semantics: merge, JSON patch, strategic merge and minimal server-side apply."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.apiserver.verbs.patch import (
    APPLY,
    JSON_PATCH,
    MERGE,
    STRATEGIC,
    PatchError,
    apply_patch,
    merge_patch,
)

WIDGET: dict[str, Any] = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {"name": "w1", "labels": {"app": "demo", "tier": "web"}, "finalizers": ["a"]},
    "spec": {"size": 3, "tags": ["x", "y"], "nested": {"keep": 1, "drop": 2}},
}

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "finalizers": ["one"]},
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "app:1",
                        "args": ["--a"],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "ports": [{"containerPort": 80, "name": "http"}],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    },
                    {"name": "sidecar", "image": "side:1"},
                ],
                "volumes": [{"name": "data", "emptyDir": {}}],
            }
        }
    },
}


def patched(obj: dict[str, Any], body: Any, content_type: str, *, custom: bool = True) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return apply_patch(obj, raw, content_type, custom_resource=custom)


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize(
    ("body", "expected_spec"),
    [
        pytest.param({"spec": {"size": 5}}, {"size": 5}, id="replace-scalar"),
        pytest.param({"spec": {"tags": ["z"]}}, {"tags": ["z"]}, id="lists-replace-wholesale"),
        pytest.param({"spec": {"nested": {"drop": None}}}, {"nested": {"keep": 1}}, id="null"),
        pytest.param({"spec": {"nested": {"new": {"a": 1}}}}, {}, id="adds-nested-object"),
    ],
)
def test_merge_patch_follows_rfc_7386(body: dict[str, Any], expected_spec: dict[str, Any]) -> None:
    result = patched(WIDGET, body, MERGE)
    for key, value in expected_spec.items():
        assert result["spec"][key] == value
    assert result["metadata"] == WIDGET["metadata"]


def test_merge_patch_deletes_a_whole_subtree_with_null() -> None:
    result = patched(WIDGET, {"metadata": {"labels": None}}, MERGE)
    assert "labels" not in result["metadata"]


def test_content_type_parameters_are_ignored() -> None:
    result = patched(WIDGET, {"spec": {"size": 9}}, MERGE + "; charset=utf-8")
    assert result["spec"]["size"] == 9


def test_patching_never_mutates_the_input_or_shares_structure() -> None:
    snapshot = copy.deepcopy(WIDGET)
    for content_type, body in [
        (MERGE, {"spec": {"size": 1}}),
        (JSON_PATCH, [{"op": "add", "path": "/spec/tags/-", "value": "q"}]),
        (APPLY, {"spec": {"size": 2}}),
    ]:
        result = patched(WIDGET, body, content_type)
        result["metadata"]["labels"]["app"] = "changed"
        result["spec"]["nested"]["keep"] = "changed"
    assert snapshot == WIDGET


@pytest.mark.parametrize(
    ("operations", "check"),
    [
        pytest.param(
            [{"op": "replace", "path": "/spec/size", "value": 7}],
            lambda o: o["spec"]["size"] == 7,
            id="replace",
        ),
        pytest.param(
            [{"op": "add", "path": "/spec/tags/0", "value": "first"}],
            lambda o: o["spec"]["tags"] == ["first", "x", "y"],
            id="add-into-list",
        ),
        pytest.param(
            [{"op": "remove", "path": "/metadata/labels/tier"}],
            lambda o: o["metadata"]["labels"] == {"app": "demo"},
            id="remove",
        ),
        pytest.param(
            [{"op": "move", "from": "/spec/nested/drop", "path": "/spec/moved"}],
            lambda o: o["spec"]["moved"] == 2 and "drop" not in o["spec"]["nested"],
            id="move",
        ),
        pytest.param(
            [{"op": "copy", "from": "/spec/size", "path": "/spec/copied"}],
            lambda o: o["spec"]["copied"] == 3,
            id="copy",
        ),
        pytest.param(
            [
                {"op": "test", "path": "/spec/size", "value": 3},
                {"op": "replace", "path": "/spec/size", "value": 4},
            ],
            lambda o: o["spec"]["size"] == 4,
            id="test-passes",
        ),
        pytest.param(
            [{"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "w"}],
            lambda o: o["metadata"]["labels"]["app.kubernetes.io/name"] == "w",
            id="escaped-slash",
        ),
    ],
)
def test_json_patch_operations(operations: list[dict[str, Any]], check: Any) -> None:
    assert check(patched(WIDGET, operations, JSON_PATCH))


@pytest.mark.parametrize(
    ("content_type", "body", "code", "reason", "fragment"),
    [
        pytest.param(JSON_PATCH, {"op": "add"}, 400, "BadRequest", "JSON array", id="not-array"),
        pytest.param(JSON_PATCH, [1], 400, "BadRequest", "not an object", id="op-not-object"),
        pytest.param(
            JSON_PATCH,
            [{"op": "test", "path": "/spec/size", "value": 4}],
            422,
            "Invalid",
            "test operation failed",
            id="test-fails",
        ),
        pytest.param(
            JSON_PATCH,
            [{"op": "remove", "path": "/spec/missing"}],
            422,
            "Invalid",
            "cannot be applied",
            id="remove-missing",
        ),
        pytest.param(
            JSON_PATCH,
            [{"op": "add", "path": "/no/such/parent", "value": 1}],
            422,
            "Invalid",
            "cannot be applied",
            id="add-under-missing-parent",
        ),
        pytest.param(
            JSON_PATCH,
            [{"op": "replace", "path": "/spec/tags/9", "value": 1}],
            422,
            "Invalid",
            "cannot be applied",
            id="index-out-of-range",
        ),
        pytest.param(
            JSON_PATCH,
            [{"op": "frobnicate", "path": "/spec"}],
            422,
            "Invalid",
            "frobnicate",
            id="unknown-op",
        ),
        pytest.param(
            JSON_PATCH,
            [{"op": "replace", "path": "", "value": [1]}],
            422,
            "Invalid",
            "must be a JSON object",
            id="result-not-object",
        ),
        pytest.param(MERGE, [1, 2], 400, "BadRequest", "expected a JSON object", id="merge-list"),
        pytest.param(MERGE, b"{not json", 400, "BadRequest", "error decoding", id="bad-json"),
        pytest.param(
            STRATEGIC, {}, 415, "UnsupportedMediaType", "custom resources", id="strategic-on-cr"
        ),
        pytest.param(
            "application/json", {}, 415, "UnsupportedMediaType", "unknown format", id="plain-json"
        ),
        pytest.param(APPLY, b"- a\n- b\n", 400, "BadRequest", "expected a JSON object", id="list"),
        pytest.param(APPLY, b"a: [1\n", 400, "BadRequest", "YAML", id="bad-yaml"),
        pytest.param(APPLY, b"a: 1\n---\nb: 2\n", 400, "BadRequest", "YAML", id="two-documents"),
    ],
)
def test_bad_patches_are_rejected_with_kubernetes_status(
    content_type: str, body: Any, code: int, reason: str, fragment: str
) -> None:
    with pytest.raises(PatchError) as caught:
        patched(WIDGET, body, content_type)
    assert (caught.value.code, caught.value.reason) == (code, reason)
    assert fragment in str(caught.value)


def test_apply_accepts_yaml_and_keeps_timestamps_as_strings() -> None:
    body = b"spec:\n  size: 4\n  when: 2024-01-02T03:04:05Z\n  on: yes\n  7: seven\n"
    result = patched(WIDGET, body, APPLY)
    assert result["spec"]["size"] == 4
    assert result["spec"]["when"] == "2024-01-02T03:04:05Z"
    assert result["spec"]["7"] == "seven"
    assert result["spec"]["tags"] == ["x", "y"]


def test_apply_accepts_json_and_creates_from_empty() -> None:
    result = patched({}, {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}}, APPLY)
    assert result == {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}}


def test_strategic_merge_merges_containers_env_and_ports_by_key() -> None:
    body = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:2",
                            "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "args": ["--b"],
                        }
                    ]
                }
            }
        }
    }
    spec = pod_spec(patched(DEPLOYMENT, body, STRATEGIC, custom=False))
    app, sidecar = spec["containers"]
    assert app["image"] == "app:2"
    assert app["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "20"},
        {"name": "C", "value": "3"},
    ]
    assert app["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}]
    assert app["args"] == ["--b"]  # lists without a merge key are replaced
    assert app["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert sidecar == {"name": "sidecar", "image": "side:1"}


@pytest.mark.parametrize(
    ("containers_patch", "expected_names"),
    [
        pytest.param(
            [{"name": "sidecar", "$patch": "delete"}], ["app"], id="delete-element-directive"
        ),
        pytest.param(
            [{"name": "extra", "image": "x"}], ["app", "sidecar", "extra"], id="new-element-appends"
        ),
        pytest.param(
            [{"$patch": "replace"}, {"name": "only", "image": "o"}], ["only"], id="replace-list"
        ),
    ],
)
def test_strategic_merge_list_directives(
    containers_patch: list[dict[str, Any]], expected_names: list[str]
) -> None:
    body = {"spec": {"template": {"spec": {"containers": containers_patch}}}}
    spec = pod_spec(patched(DEPLOYMENT, body, STRATEGIC, custom=False))
    assert [c["name"] for c in spec["containers"]] == expected_names


def test_strategic_merge_map_directives() -> None:
    replaced = patched(
        DEPLOYMENT,
        {"spec": {"template": {"spec": {"$patch": "replace", "containers": []}}}},
        STRATEGIC,
        custom=False,
    )
    assert pod_spec(replaced) == {"containers": []}
    deleted = patched(
        DEPLOYMENT, {"spec": {"template": {"$patch": "delete"}}}, STRATEGIC, custom=False
    )
    assert deleted["spec"] == {}


def test_strategic_merge_honours_kubectl_apply_directives() -> None:
    body = {
        "metadata": {"finalizers": ["two"], "$deleteFromPrimitiveList/finalizers": ["one"]},
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                    "containers": [{"name": "app", "image": "app:3"}],
                    "volumes": [{"name": "data", "$retainKeys": ["name", "hostPath"]}],
                }
            }
        },
    }
    result = patched(DEPLOYMENT, body, STRATEGIC, custom=False)
    assert result["metadata"]["finalizers"] == ["two"]
    spec = pod_spec(result)
    assert [c["name"] for c in spec["containers"]] == ["sidecar", "app"]
    assert spec["containers"][1]["image"] == "app:3"
    assert spec["volumes"] == [{"name": "data"}]


def test_strategic_merge_adds_finalizers_as_a_set() -> None:
    result = patched(
        DEPLOYMENT, {"metadata": {"finalizers": ["one", "two"]}}, STRATEGIC, custom=False
    )
    assert result["metadata"]["finalizers"] == ["one", "two"]


def test_strategic_merge_service_ports_merge_on_port() -> None:
    service = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}
    body = {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}
    result = patched(service, body, STRATEGIC, custom=False)
    assert result["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443}]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(
            {"spec": {"template": {"spec": {"containers": [{"image": "nameless"}]}}}},
            "does not contain declared merge key: name",
            id="missing-merge-key",
        ),
        pytest.param({"spec": {"$patch": "explode"}}, "unknown patch type", id="bad-directive"),
    ],
)
def test_malformed_strategic_merge_is_invalid(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PatchError) as caught:
        patched(DEPLOYMENT, body, STRATEGIC, custom=False)
    assert caught.value.code == 422
    assert fragment in str(caught.value)


# --- properties -------------------------------------------------------------------------

_KEYS = st.sampled_from(["a", "b", "c", "d"])
_LEAVES = st.one_of(st.integers(-3, 3), st.text(max_size=3), st.booleans())
_VALUES = st.recursive(
    _LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(_KEYS, children, max_size=3)
    ),
    max_leaves=8,
)
_OBJECTS = st.dictionaries(_KEYS, _VALUES, max_size=4)


def merge_diff(source: Any, target: Any) -> Any:
    """The RFC 7386 patch that turns `source` into `target` (target has no nulls)."""
    if not (isinstance(source, dict) and isinstance(target, dict)):
        return target
    diff: dict[str, Any] = {key: None for key in source if key not in target}
    for key, value in target.items():
        if key not in source or source[key] != value:
            diff[key] = merge_diff(source.get(key), value)
    return diff


_PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(source=_OBJECTS, target=_OBJECTS)
def test_applying_the_merge_diff_yields_the_target(
    source: dict[str, Any], target: dict[str, Any]
) -> None:
    assert merge_patch(source, merge_diff(source, target)) == target
    assert patched(source, merge_diff(source, target), MERGE) == target


_PATCH_VALUES = st.recursive(
    st.one_of(_LEAVES, st.none()),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(_KEYS, children, max_size=3)
    ),
    max_leaves=8,
)


@_PROPERTY
@given(source=_OBJECTS, patch=st.dictionaries(_KEYS, _PATCH_VALUES, max_size=4))
def test_a_merge_patch_body_gives_what_rfc_7386_gives_and_leaves_the_object_alone(
    source: dict[str, Any], patch: dict[str, Any]
) -> None:
    # nulls anywhere: deleting keys, inside new objects (dropped), inside lists (kept)
    before = copy.deepcopy(source)
    result = patched(source, patch, MERGE)
    assert result == merge_patch(source, patch)
    assert source == before


@_PROPERTY
@given(source=_OBJECTS, target=_OBJECTS)
def test_applying_a_generated_json_patch_yields_the_target(
    source: dict[str, Any], target: dict[str, Any]
) -> None:
    operations = jsonpatch.make_patch(source, target).patch
    assert patched(source, operations, JSON_PATCH) == target


@_PROPERTY
@given(source=_OBJECTS, patch=_OBJECTS)
def test_strategic_merge_without_directives_equals_merge_patch(
    source: dict[str, Any], patch: dict[str, Any]
) -> None:
    # keys a-d are not keyed list fields, so strategic merge must behave like RFC 7386
    assert patched(source, patch, STRATEGIC, custom=False) == patched(source, patch, MERGE)


def _nested(depth: int) -> bytes:
    return b'{"spec":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param(MERGE, id="merge"),
        pytest.param(APPLY, id="apply"),
    ],
)
@pytest.mark.parametrize(
    "depth", [pytest.param(600, id="too-deep"), pytest.param(5000, id="recursion")]
)
def test_patch_nested_too_deeply_is_a_400_not_a_crash(content_type: str, depth: int) -> None:
    with pytest.raises(PatchError) as raised:
        apply_patch({"spec": {}}, _nested(depth), content_type, custom_resource=True)
    assert raised.value.code == 400
    assert "nests deeper than" in str(raised.value)
