"""The RBAC rule matcher and the request attributes it is asked about, as upstream's
`RuleAllows` and request-info parser behave."""

from __future__ import annotations

import pytest

from engine.apiserver.authn.user_info import UserInfo
from engine.apiserver.authz.attributes import Attributes, request_attributes
from engine.apiserver.authz.escalation import missing_rules
from engine.apiserver.authz.rules import PolicyRule, rule_allows

ALICE = UserInfo("alice", groups=("system:authenticated",))


def resource(verb: str, resource: str, *, group: str = "", sub: str = "", name: str = "",
             namespace: str = "default") -> Attributes:  # fmt: skip
    return Attributes(
        user=ALICE, verb=verb, resource_request=True, api_group=group, api_version="v1",
        namespace=namespace, resource=resource, subresource=sub, name=name,
    )  # fmt: skip


def path(verb: str, url: str) -> Attributes:
    return Attributes(user=ALICE, verb=verb, resource_request=False, path=url)


def rule(**fields: list[str]) -> PolicyRule:
    return PolicyRule.parse(fields)


MATCHES = [
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["pods"]),
                 resource("get", "pods"), True, id="exact"),
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["pods"]),
                 resource("list", "pods"), False, id="other-verb"),
    pytest.param(rule(verbs=["*"], apiGroups=[""], resources=["pods"]),
                 resource("deletecollection", "pods"), True, id="verb-wildcard"),
    pytest.param(rule(verbs=["get"], apiGroups=["apps"], resources=["pods"]),
                 resource("get", "pods"), False, id="other-group"),
    pytest.param(rule(verbs=["get"], apiGroups=["*"], resources=["deployments"]),
                 resource("get", "deployments", group="apps"), True, id="group-wildcard"),
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["*"]),
                 resource("get", "secrets"), True, id="resource-wildcard"),
    pytest.param(rule(verbs=["*"], apiGroups=["*"], resources=["*"]),
                 resource("patch", "sites", group="example.dev", sub="status"), True,
                 id="all-wildcards-cover-subresources"),
    pytest.param(rule(verbs=["patch"], apiGroups=["example.dev"], resources=["sites"]),
                 resource("patch", "sites", group="example.dev", sub="status"), False,
                 id="resource-does-not-cover-its-subresource"),
    pytest.param(rule(verbs=["patch"], apiGroups=["example.dev"], resources=["sites/status"]),
                 resource("patch", "sites", group="example.dev", sub="status"), True,
                 id="subresource"),
    pytest.param(rule(verbs=["patch"], apiGroups=["example.dev"], resources=["sites/status"]),
                 resource("patch", "sites", group="example.dev"), False,
                 id="subresource-does-not-cover-resource"),
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["*/status"]),
                 resource("get", "services", sub="status"), True, id="any-resource-subresource"),
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["*/status"]),
                 resource("get", "services", sub="scale"), False, id="other-subresource"),
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["*/status"]),
                 resource("get", "services"), False, id="star-subresource-needs-one"),
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["pods/*"]),
                 resource("get", "pods", sub="log"), False, id="resource-star-is-not-a-pattern"),
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["configmaps"],
                      resourceNames=["a"]),
                 resource("get", "configmaps", name="a"), True, id="resource-name"),
    pytest.param(rule(verbs=["get"], apiGroups=[""], resources=["configmaps"],
                      resourceNames=["a"]),
                 resource("get", "configmaps", name="b"), False, id="other-resource-name"),
    pytest.param(rule(verbs=["list"], apiGroups=[""], resources=["configmaps"],
                      resourceNames=["a"]),
                 resource("list", "configmaps"), False, id="resource-names-exclude-collections"),
    pytest.param(rule(verbs=["get"], nonResourceURLs=["/healthz"]),
                 path("get", "/healthz"), True, id="url-exact"),
    pytest.param(rule(verbs=["get"], nonResourceURLs=["/healthz"]),
                 path("get", "/healthz/etcd"), False, id="url-exact-only"),
    pytest.param(rule(verbs=["get"], nonResourceURLs=["/apis/*"]),
                 path("get", "/apis/apps/v1"), True, id="url-prefix"),
    pytest.param(rule(verbs=["get"], nonResourceURLs=["/apis/*"]),
                 path("get", "/apis"), False, id="url-prefix-needs-the-slash"),
    pytest.param(rule(verbs=["*"], nonResourceURLs=["*"]),
                 path("post", "/anything"), True, id="url-wildcard"),
    pytest.param(rule(verbs=["get"], nonResourceURLs=["/version"]),
                 path("post", "/version"), False, id="url-other-verb"),
    pytest.param(rule(verbs=["get"], nonResourceURLs=["*"]),
                 resource("get", "pods"), False, id="url-rule-grants-no-resource"),
    pytest.param(rule(verbs=["get"], apiGroups=["*"], resources=["*"]),
                 path("get", "/version"), False, id="resource-rule-grants-no-url"),
]  # fmt: skip


@pytest.mark.parametrize(("policy", "attrs", "allowed"), MATCHES)
def test_rule_allows_as_upstream(policy: PolicyRule, attrs: Attributes, allowed: bool) -> None:
    assert rule_allows(policy, attrs) is allowed


PARSED = [
    pytest.param("GET", "/api/v1/namespaces/default/pods", {},
                 ("list", "", "default", "pods", "", ""), id="list"),
    pytest.param("GET", "/api/v1/namespaces/default/pods", {"watch": "true"},
                 ("watch", "", "default", "pods", "", ""), id="watch"),
    pytest.param("GET", "/api/v1/watch/namespaces/default/pods", {},
                 ("watch", "", "default", "pods", "", ""), id="legacy-watch-prefix"),
    pytest.param("GET", "/api/v1/namespaces/default/pods/web", {},
                 ("get", "", "default", "pods", "", "web"), id="get"),
    pytest.param("GET", "/api/v1/namespaces/default/configmaps",
                 {"fieldSelector": "metadata.name=one"},
                 ("list", "", "default", "configmaps", "", "one"), id="name-selector"),
    pytest.param("PATCH", "/apis/example.dev/v1/namespaces/default/sites/blog/status", {},
                 ("patch", "example.dev", "default", "sites", "status", "blog"),
                 id="subresource"),
    pytest.param("DELETE", "/api/v1/namespaces/default/secrets", {},
                 ("deletecollection", "", "default", "secrets", "", ""), id="deletecollection"),
    pytest.param("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {},
                 ("create", "rbac.authorization.k8s.io", "", "clusterroles", "", ""),
                 id="cluster-scoped"),
    pytest.param("GET", "/api/v1/namespaces/kube-system", {},
                 ("get", "", "kube-system", "namespaces", "", "kube-system"), id="namespace"),
    pytest.param("PUT", "/api/v1/namespaces/kube-system/finalize", {},
                 ("update", "", "kube-system", "namespaces", "finalize", "kube-system"),
                 id="namespace-subresource"),
    pytest.param("POST", "/api/v1/namespaces/ns/serviceaccounts/engine/token", {},
                 ("create", "", "ns", "serviceaccounts", "token", "engine"), id="token-request"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "url", "query", "expected"), PARSED)
def test_request_attributes_read_from_method_and_url(
    method: str, url: str, query: dict[str, str], expected: tuple[str, ...]
) -> None:
    attrs = request_attributes(ALICE, method=method, path=url, query=query)
    assert attrs.resource_request
    got = (attrs.verb, attrs.api_group, attrs.namespace, attrs.resource, attrs.subresource,
           attrs.name)  # fmt: skip
    assert got == expected


@pytest.mark.parametrize(
    "url",
    [
        "/api",
        "/apis",
        "/api/v1",
        "/apis/apps",
        "/apis/apps/v1",
        "/version",
        "/healthz",
        "/openapi/v3/apis/apps/v1",
    ],
)
def test_urls_outside_resources_are_non_resource_requests(url: str) -> None:
    attrs = request_attributes(ALICE, method="GET", path=url, query={})
    assert not attrs.resource_request
    assert (attrs.verb, attrs.path) == ("get", url)


COVERS = [
    pytest.param([rule(verbs=["*"], apiGroups=["*"], resources=["*"])],
                 rule(verbs=["get", "delete"], apiGroups=["apps"], resources=["deployments"]),
                 [], id="wildcards-cover-everything"),
    pytest.param([rule(verbs=["get"], apiGroups=[""], resources=["configmaps"])],
                 rule(verbs=["get", "list"], apiGroups=[""], resources=["configmaps"]),
                 ["list configmaps"], id="one-verb-missing"),
    pytest.param([rule(verbs=["get"], apiGroups=[""], resources=["configmaps"],
                       resourceNames=["a"])],
                 rule(verbs=["get"], apiGroups=[""], resources=["configmaps"]),
                 ["get configmaps"], id="named-does-not-cover-all-names"),
    pytest.param([rule(verbs=["get"], apiGroups=[""], resources=["configmaps"])],
                 rule(verbs=["get"], apiGroups=[""], resources=["configmaps"],
                      resourceNames=["a"]),
                 [], id="all-names-cover-one"),
    pytest.param([rule(verbs=["patch"], apiGroups=["x"], resources=["*/status"])],
                 rule(verbs=["patch"], apiGroups=["x"], resources=["sites/status", "sites"]),
                 ["patch sites"], id="star-subresource"),
    pytest.param([rule(verbs=["get"], apiGroups=[""], resources=["pods"])],
                 rule(verbs=["get"], apiGroups=["*"], resources=["pods"]),
                 ["get pods"], id="a-wildcard-needs-a-wildcard"),
    pytest.param([rule(verbs=["get"], nonResourceURLs=["/apis/*"])],
                 rule(verbs=["get"], nonResourceURLs=["/apis/apps", "/metrics"]),
                 ["get /metrics"], id="urls"),
]  # fmt: skip


@pytest.mark.parametrize(("owned", "granted", "missing"), COVERS)
def test_escalation_finds_the_rules_not_held(
    owned: list[PolicyRule], granted: PolicyRule, missing: list[str]
) -> None:
    found = missing_rules(owned, [granted])
    shown = [f"{r.verbs[0]} {(r.resources or r.non_resource_urls)[0]}" for r in found]
    assert shown == missing
