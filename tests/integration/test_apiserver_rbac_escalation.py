"""Escalation prevention: a user who may write Roles and bindings can grant only what it
holds, unless it has the `escalate` verb (roles) or `bind` (on the role); refusals name
the permissions not held, as upstream words them, and nothing is stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from engine.apiserver.http.security import SecurityOptions
from tests.integration.auth_support import RBAC, Secured, bind, create, secured, status_of, subject

TOKENS = "alice-token,alice,1\ncarol-token,carol,3\n"


def rule(resources: list[str], verbs: list[str], **extra: Any) -> dict[str, Any]:
    return {"apiGroups": extra.pop("groups", [""]), "resources": resources, "verbs": verbs,
            **extra}  # fmt: skip


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Secured]:
    token_file = tmp_path / "tokens.csv"
    token_file.write_text(TOKENS)
    options = SecurityOptions(authorization_mode="RBAC", token_auth_file=token_file)
    async with secured(options) as running:
        await create(running.admin, "ClusterRole", {"metadata": {"name": "delegator"}, "rules": [
            rule(["roles", "rolebindings"], ["create", "patch", "get"], groups=[RBAC]),
            rule(["configmaps"], ["get", "list"]),
        ]})  # fmt: skip
        await bind(running.admin, name="alice-delegates", role="delegator", namespace="default",
                   subjects=[subject("User", "alice")])  # fmt: skip
        await create(
            running.admin,
            "ClusterRole",
            {"metadata": {"name": "cm-reader"}, "rules": [rule(["configmaps"], ["list"])]},
        )
        await create(
            running.admin,
            "ClusterRole",
            {"metadata": {"name": "secret-reader"}, "rules": [rule(["secrets"], ["get"])]},
        )
        yield running


def role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC}/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": "default"}, "rules": rules}  # fmt: skip


def binding(name: str, role_name: str, user: str) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": "default"},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role_name},
            "subjects": [subject("User", user)]}  # fmt: skip


async def test_a_role_with_only_held_rules_may_be_written(server: Secured) -> None:
    async with server.as_token("alice-token") as api:
        rbac = client.RbacAuthorizationV1Api(api)
        await rbac.create_namespaced_role("default", role("held", [rule(["configmaps"], ["get"])]))


async def test_a_role_granting_more_than_held_is_refused(server: Secured) -> None:
    async with server.as_token("alice-token") as api:
        rbac = client.RbacAuthorizationV1Api(api)
        wider = role("wider", [rule(["configmaps"], ["get", "delete"]), rule(["secrets"], ["get"])])
        with pytest.raises(ApiException) as refused:
            await rbac.create_namespaced_role("default", wider)
    body = json.loads(refused.value.body)
    assert refused.value.status == 403
    assert body["message"] == (
        'roles.rbac.authorization.k8s.io "wider" is forbidden: user "alice" '
        '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not '
        'currently held:\n{APIGroups:[""], Resources:["configmaps"], Verbs:["delete"]}\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}'
    )
    admin = client.RbacAuthorizationV1Api(server.admin)
    assert await status_of(admin.read_namespaced_role("wider", "default")) == 404


async def test_binding_a_held_role_passes_its_rights_on(server: Secured) -> None:
    async with server.as_token("alice-token") as api:
        rbac = client.RbacAuthorizationV1Api(api)
        await rbac.create_namespaced_role_binding("default", binding("carol-cm", "cm-reader",
                                                                     "carol"))  # fmt: skip
    async with server.as_token("carol-token") as api:
        assert await status_of(client.CoreV1Api(api).list_namespaced_config_map("default")) == 200


async def test_binding_a_role_not_held_is_refused_unless_bind_is_granted(
    server: Secured,
) -> None:
    async with server.as_token("alice-token") as api:
        rbac = client.RbacAuthorizationV1Api(api)
        attempt = binding("carol-secrets", "secret-reader", "carol")
        with pytest.raises(ApiException) as refused:
            await rbac.create_namespaced_role_binding("default", attempt)
        assert refused.value.status == 403
        assert "is attempting to grant RBAC permissions not currently held" in refused.value.body
        await create(
            server.admin,
            "ClusterRole",
            {
                "metadata": {"name": "binder"},
                "rules": [
                    rule(["clusterroles"], ["bind"], groups=[RBAC], resourceNames=["secret-reader"])
                ],
            },
        )
        await bind(server.admin, name="alice-binds", role="binder", namespace="default",
                   subjects=[subject("User", "alice")])  # fmt: skip
        await rbac.create_namespaced_role_binding("default", attempt)
    async with server.as_token("carol-token") as api:
        assert await status_of(client.CoreV1Api(api).read_namespaced_secret("x", "default")) == 404


async def test_binding_a_missing_role_without_bind_is_not_found(server: Secured) -> None:
    async with server.as_token("alice-token") as api:
        rbac = client.RbacAuthorizationV1Api(api)
        missing = rbac.create_namespaced_role_binding("default", binding("g", "ghost", "carol"))
        assert await status_of(missing) == 404


async def test_patching_a_role_needs_escalate(server: Secured) -> None:
    admin = client.RbacAuthorizationV1Api(server.admin)
    await admin.create_namespaced_role("default", role("mine", [rule(["configmaps"], ["get"])]))
    async with server.as_token("alice-token") as api:
        rbac = client.RbacAuthorizationV1Api(api)
        patch = {"rules": [rule(["secrets"], ["*"])]}
        assert await status_of(rbac.patch_namespaced_role("mine", "default", patch)) == 403
    stored = await admin.read_namespaced_role("mine", "default")
    assert [r.resources for r in stored.rules] == [["configmaps"]]
