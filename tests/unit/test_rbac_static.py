"""The engine's RBAC, read from the rendered manifests (S1): no wildcards, no privilege
escalation verbs, no Secrets, the Lease only in the engine's namespace and by name where
Kubernetes allows it, status by patch, and finalizers update exactly because the engine
sets blockOwnerDeletion on its children."""

from __future__ import annotations

import pytest

from engine.example.site_resource import SITE
from engine.runtime.reconcile.steps import owner_reference
from tests.support.manifests import CONFIG, Manifest, find, needs_kubectl, render
from tests.support.rbac import Request, Rule, roles_in, rules_of

pytestmark = needs_kubectl
ESCALATING_VERBS = {"escalate", "bind", "impersonate"}
UNNAMEABLE_VERBS = {"create", "list", "watch", "deletecollection"}
"""Verbs whose requests carry no object name, so resourceNames cannot restrict them."""


@pytest.fixture(scope="module")
def base() -> list[Manifest]:
    return render(CONFIG)


@pytest.fixture(scope="module")
def rules(base: list[Manifest]) -> list[Rule]:
    return [rule for role in roles_in(base) for rule in rules_of(role)]


def test_no_rule_uses_a_wildcard(rules: list[Rule]) -> None:
    for rule in rules:
        for field in (rule.api_groups, rule.resources, rule.verbs, rule.resource_names):
            assert not any("*" in value for value in field), rule


def test_no_rule_grants_escalate_bind_or_impersonate(rules: list[Rule]) -> None:
    assert not any(set(rule.verbs) & ESCALATING_VERBS for rule in rules)


def test_no_rule_touches_secrets_or_non_resource_urls(base: list[Manifest]) -> None:
    for role in roles_in(base):
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule
            assert not any(r.split("/")[0] == "secrets" for r in rule.get("resources", []))


def test_resource_names_only_restrict_verbs_that_name_an_object(rules: list[Rule]) -> None:
    for rule in rules:
        if rule.resource_names:
            assert not set(rule.verbs) & UNNAMEABLE_VERBS, rule


def test_the_lease_is_granted_only_in_the_engine_namespace_and_by_name(
    base: list[Manifest], rules: list[Rule]
) -> None:
    deployment = find(base, "Deployment", "engine")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    lease_name = next(e["value"] for e in container["env"] if e["name"] == "ENGINE_LEASE_NAME")
    lease_rules = [r for r in rules if "coordination.k8s.io" in r.api_groups]
    assert lease_rules
    for rule in lease_rules:
        assert rule.namespace == deployment["metadata"]["namespace"], rule.role
        assert rule.resources == ("leases",)
        # create carries no name in its URL, so it is the one verb left unrestricted
        assert rule.resource_names == (lease_name,) or set(rule.verbs) == {"create"}
    namespace = deployment["metadata"]["namespace"]
    renew = Request("update", "coordination.k8s.io", "leases", "", namespace, lease_name)
    assert any(rule.allows(renew) for rule in lease_rules)
    elsewhere = Request("update", "coordination.k8s.io", "leases", "", "default", lease_name)
    assert not any(rule.allows(elsewhere) for rule in rules)


def test_status_is_written_by_patch_on_the_subresource(rules: list[Rule]) -> None:
    status = Request("patch", SITE.group, SITE.plural, "status", "default", "blog")
    assert any(rule.allows(status) for rule in rules)
    whole = Request("update", SITE.group, SITE.plural, "", "default", "blog")
    assert not any(rule.allows(whole) for rule in rules)


def test_finalizers_update_is_granted_because_children_block_owner_deletion(
    rules: list[Rule],
) -> None:
    owner = {
        "apiVersion": f"{SITE.group}/{SITE.version}",
        "kind": SITE.kind,
        "metadata": {"name": "blog", "namespace": "default", "uid": "u-1"},
    }
    blocks = owner_reference(owner).get("blockOwnerDeletion") is True
    finalizers = Request("update", SITE.group, SITE.plural, "finalizers", "default", "blog")
    assert any(rule.allows(finalizers) for rule in rules) == blocks


def test_the_crd_may_be_patched_by_name_only(rules: list[Rule]) -> None:
    crd_rules = [r for r in rules if "customresourcedefinitions" in r.resources]
    assert [r.resource_names for r in crd_rules] == [(f"{SITE.plural}.{SITE.group}",)]
    other = Request("patch", "apiextensions.k8s.io", "customresourcedefinitions", "", "", "x.y")
    assert not any(rule.allows(other) for rule in rules)


def test_the_engine_deletes_nothing_itself(rules: list[Rule]) -> None:
    assert not any({"delete", "deletecollection"} & set(rule.verbs) for rule in rules)


def test_the_bindings_give_the_roles_to_the_pods_service_account(base: list[Manifest]) -> None:
    deployment = find(base, "Deployment", "engine")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    namespace = deployment["metadata"]["namespace"]
    find(base, "ServiceAccount", account)
    for binding_kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        bindings = [m for m in base if m["kind"] == binding_kind]
        assert bindings
        for binding in bindings:
            assert binding["subjects"] == [
                {"kind": "ServiceAccount", "name": account, "namespace": namespace}
            ]
            assert binding["roleRef"]["kind"] == role_kind
            find(base, role_kind, binding["roleRef"]["name"])
