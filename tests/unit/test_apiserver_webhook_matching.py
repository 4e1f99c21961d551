"""Which webhooks a request matches (rules with `*`, subresources and scope; selectors)
and the order of API versions in discovery, as kube-apiserver has them."""

from __future__ import annotations

import pytest

from engine.apiserver.admission.configurations import Rule
from engine.apiserver.admission.matching import RequestedResource, rule_matches, selector_selects
from engine.apiserver.store.resource_types import BUILTINS, version_order

PODS = next(t for t in BUILTINS if t.kind == "Pod")
NAMESPACES = next(t for t in BUILTINS if t.kind == "Namespace")


@pytest.mark.parametrize(
    ("resources", "subresource", "expected"),
    [
        (("pods",), "", True),
        (("pods",), "status", False),
        (("pods/status",), "status", True),
        (("pods/status",), "", False),
        (("pods/*",), "status", True),
        (("pods/*",), "", True),  # upstream's matcher: `*` also matches no subresource
        (("*",), "", True),
        (("*",), "status", False),
        (("*/status",), "status", True),
        (("*/*",), "status", True),
        (("*/*",), "", True),
        (("deployments",), "", False),
    ],
)
def test_resources_and_subresources(
    resources: tuple[str, ...], subresource: str, expected: bool
) -> None:
    rule = Rule(("CREATE",), ("",), ("v1",), resources)
    assert rule_matches(rule, RequestedResource("CREATE", PODS, subresource), PODS) is expected


def test_operations_groups_versions_and_scope() -> None:
    request = RequestedResource("UPDATE", PODS, "")
    assert rule_matches(Rule(("*",), ("*",), ("*",), ("pods",)), request, PODS)
    assert not rule_matches(Rule(("CREATE",), ("",), ("v1",), ("pods",)), request, PODS)
    assert not rule_matches(Rule(("UPDATE",), ("apps",), ("v1",), ("pods",)), request, PODS)
    assert not rule_matches(Rule(("UPDATE",), ("",), ("v2",), ("pods",)), request, PODS)
    assert not rule_matches(Rule(("*",), ("*",), ("*",), ("*",), "Cluster"), request, PODS)
    assert rule_matches(Rule(("*",), ("*",), ("*",), ("*",), "Namespaced"), request, PODS)
    on_namespace = RequestedResource("UPDATE", NAMESPACES, "")
    assert rule_matches(Rule(("*",), ("*",), ("*",), ("*",), "Cluster"), on_namespace, NAMESPACES)


def test_label_selectors() -> None:
    labels = {"team": "a", "tier": "web"}
    assert selector_selects(None, labels)
    assert selector_selects({}, {})
    assert selector_selects({"matchLabels": {"team": "a"}}, labels)
    assert not selector_selects({"matchLabels": {"team": "b"}}, labels)
    expressions = [
        ({"key": "team", "operator": "In", "values": ["a", "b"]}, True),
        ({"key": "team", "operator": "NotIn", "values": ["a"]}, False),
        ({"key": "tier", "operator": "Exists"}, True),
        ({"key": "zone", "operator": "DoesNotExist"}, True),
        ({"key": "zone", "operator": "Exists"}, False),
    ]
    for expression, expected in expressions:
        assert selector_selects({"matchExpressions": [expression]}, labels) is expected


def test_version_order_is_upstreams() -> None:
    versions = ["v1alpha1", "foo", "v1beta1", "v2", "v1", "v10beta3", "v2alpha1"]
    assert sorted(versions, key=version_order) == [
        "v2", "v1", "v10beta3", "v1beta1", "v2alpha1", "v1alpha1", "foo",
    ]  # fmt: skip
