"""`kubectl delete --cascade=…` against `engine apiserver`: each policy leaves what it says."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.kubectl import FIXTURES, Kubectl, apiserver_process, needs_kubectl

pytestmark = [pytest.mark.e2e, needs_kubectl]


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    with apiserver_process(tmp_path_factory.mktemp("apiserver")) as kubectl:
        kubectl.ok("apply", "-f", str(FIXTURES / "site-crd.yaml"))
        kubectl.ok("wait", "--for=condition=Established", "crd/sites.example.dev", "--timeout=10s")
        yield kubectl


def family(kubectl: Kubectl, tag: str) -> str:
    """A Site owner, and a ConfigMap and a Site that it owns; the owner's uid."""
    kubectl.ok("apply", "-f", "-", stdin=site(f"{tag}-owner", tag, owner_uid=None))
    uid = kubectl.ok("get", f"site/{tag}-owner", "-o", "jsonpath={.metadata.uid}")
    kubectl.ok("apply", "-f", "-", stdin=site(f"{tag}-child", tag, owner_uid=uid))
    kubectl.ok("apply", "-f", "-", stdin=config_map(f"{tag}-data", tag, owner_uid=uid))
    return uid


def members(kubectl: Kubectl, tag: str) -> dict[str, list[str]]:
    """Every object of a family that is left: name -> the uids of its owners."""
    found = json.loads(kubectl.ok("get", "sites,configmaps", "-l", f"family={tag}", "-o", "json"))
    return {
        item["metadata"]["name"]: [
            ref["uid"] for ref in item["metadata"].get("ownerReferences", [])
        ]
        for item in found["items"]
    }


def test_background_cascade_removes_the_owner_and_then_its_dependents(kubectl: Kubectl) -> None:
    family(kubectl, "bg")
    output = kubectl.ok("delete", "site/bg-owner", "--cascade=background")
    assert output.strip() == 'site.example.dev "bg-owner" deleted'
    kubectl.ok("wait", "--for=delete", "site/bg-child", "configmap/bg-data", "--timeout=10s")
    assert members(kubectl, "bg") == {}


def test_foreground_cascade_returns_only_after_the_dependents_are_gone(kubectl: Kubectl) -> None:
    family(kubectl, "fg")
    kubectl.ok("delete", "site/fg-owner", "--cascade=foreground", "--timeout=15s")
    # kubectl waited for the owner; foreground removes the owner only after its dependents.
    assert members(kubectl, "fg") == {}


def test_orphan_cascade_leaves_the_dependents_without_the_owner_reference(
    kubectl: Kubectl,
) -> None:
    family(kubectl, "or")
    kubectl.ok("delete", "site/or-owner", "--cascade=orphan", "--timeout=15s")
    assert members(kubectl, "or") == {"or-child": [], "or-data": []}


def owner_block(tag: str, owner_uid: str | None) -> str:
    if owner_uid is None:
        return ""
    return f"""
  ownerReferences:
    - apiVersion: example.dev/v1
      kind: Site
      name: {tag}-owner
      uid: {owner_uid}
      blockOwnerDeletion: true"""


def site(name: str, tag: str, *, owner_uid: str | None) -> str:
    return f"""
apiVersion: example.dev/v1
kind: Site
metadata:
  name: {name}
  labels:
    family: {tag}{owner_block(tag, owner_uid)}
spec:
  domain: {name}.example.com
"""


def config_map(name: str, tag: str, *, owner_uid: str) -> str:
    return f"""
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  labels:
    family: {tag}{owner_block(tag, owner_uid)}
data:
  a: b
"""
