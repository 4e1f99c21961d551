"""RBAC in the embedded server, driven with kubernetes-asyncio: bindings by user, group
and ServiceAccount; a binding to a role that does not exist refuses with upstream's
reason; aggregation; anonymous requests and the default discovery bindings; the review
APIs; ServiceAccount tokens from TokenRequest; impersonation allowed and refused; HTTPS
with the generated CA; and the default mode left as it was."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from engine.apiserver.http.embedded import serve_apiserver
from engine.apiserver.http.security import SecurityOptions
from tests.integration.auth_support import Secured, bind, create, secured, status_of, subject

TOKENS = 'alice-token,alice,1,"team-a"\ncarol-token,carol,3\n'
SSAR = "SelfSubjectAccessReview"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Secured]:
    token_file = tmp_path / "tokens.csv"
    token_file.write_text(TOKENS)
    options = SecurityOptions(authorization_mode="RBAC", token_auth_file=token_file,
                              secure_port=0, cert_dir=tmp_path / "pki")  # fmt: skip
    async with secured(options) as running:
        yield running


def config_map(name: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "data": {"k": "v"}}


async def test_a_binding_to_a_missing_role_refuses_with_the_reason(server: Secured) -> None:
    await bind(server.admin, name="to-ghost", role="ghost", namespace="default",
               subjects=[subject("User", "alice")])  # fmt: skip
    async with server.as_token("alice-token") as api:
        with pytest.raises(ApiException) as refused:
            await client.CoreV1Api(api).create_namespaced_config_map("default", config_map("x"))
    body = json.loads(refused.value.body)
    assert refused.value.status == 403
    assert body["message"] == (
        'configmaps is forbidden: User "alice" cannot create resource "configmaps" in API '
        'group "" in the namespace "default": RBAC: clusterrole.rbac.authorization.k8s.io '
        '"ghost" not found'
    )
    assert body["details"] == {"kind": "configmaps"}
    admin = client.CoreV1Api(server.admin)
    assert await status_of(admin.read_namespaced_config_map("x", "default")) == 404


async def test_group_bindings_apply_and_roles_stay_in_their_namespace(server: Secured) -> None:
    await create(server.admin, "Role", {
        "metadata": {"name": "cm-writer", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                   "verbs": ["create", "get"]}],
    })  # fmt: skip
    await bind(server.admin, name="team-a", role="cm-writer", role_kind="Role",
               namespace="default", subjects=[subject("Group", "team-a")])  # fmt: skip
    async with server.as_token("alice-token") as alice, server.as_token("carol-token") as carol:
        core = client.CoreV1Api(alice)
        await core.create_namespaced_config_map("default", config_map("mine"))
        assert (await core.read_namespaced_config_map("mine", "default")).data == {"k": "v"}
        assert await status_of(core.delete_namespaced_config_map("mine", "default")) == 403
        assert (
            await status_of(core.create_namespaced_config_map("kube-system", config_map("mine")))
            == 403
        )
        other = client.CoreV1Api(carol)
        assert await status_of(other.read_namespaced_config_map("mine", "default")) == 403


async def test_a_service_account_token_acts_as_the_account(server: Secured) -> None:
    core = client.CoreV1Api(server.admin)
    await core.create_namespaced_service_account("default", {"metadata": {"name": "robot"}})
    await bind(server.admin, name="robot-view", role="view-cm", namespace="default",
               subjects=[subject("ServiceAccount", "robot")])  # fmt: skip
    await create(server.admin, "ClusterRole", {
        "metadata": {"name": "view-cm"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
    })  # fmt: skip
    issued = await core.create_namespaced_service_account_token(
        "robot", "default", {"spec": {"expirationSeconds": 3600}}
    )
    token = issued.status.token
    async with server.as_token(token) as api:
        assert (await client.CoreV1Api(api).list_namespaced_config_map("default")).items == []
        assert await status_of(client.CoreV1Api(api).list_namespaced_secret("default")) == 403
    reviewed = await client.AuthenticationV1Api(server.admin).create_token_review(
        {"spec": {"token": token}}
    )
    assert reviewed.status.authenticated
    assert reviewed.status.user.username == "system:serviceaccount:default:robot"
    assert reviewed.status.user.groups == [
        "system:serviceaccounts",
        "system:serviceaccounts:default",
        "system:authenticated",
    ]
    await core.delete_namespaced_service_account("robot", "default")
    async with server.as_token(token) as api:
        assert await status_of(client.CoreV1Api(api).list_namespaced_config_map("default")) == 401


async def test_a_token_request_for_a_missing_account_is_404(server: Secured) -> None:
    core = client.CoreV1Api(server.admin)
    missing = core.create_namespaced_service_account_token("nobody", "default", {"spec": {}})
    assert await status_of(missing) == 404


async def test_an_aggregated_cluster_role_gains_the_labelled_rules(server: Secured) -> None:
    await create(server.admin, "ClusterRole", {
        "metadata": {"name": "aggregate"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "yes"}}]},
        "rules": [],
    })  # fmt: skip
    await bind(server.admin, name="carol-agg", role="aggregate",
               subjects=[subject("User", "carol")])  # fmt: skip
    async with server.as_token("carol-token") as api:
        core = client.CoreV1Api(api)
        assert await status_of(core.list_namespace()) == 403
        await create(server.admin, "ClusterRole", {
            "metadata": {"name": "ns-reader", "labels": {"agg": "yes"}},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}],
        })  # fmt: skip
        assert await status_of(core.list_namespace()) == 200


async def test_anonymous_requests_see_only_the_public_paths(server: Secured) -> None:
    assert server.server.ca_pem is not None
    ca = server.scratch / "ca.pem"
    ca.write_bytes(server.server.ca_pem)
    context = ssl.create_default_context(cafile=str(ca))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        for path, code in (("/version", 200), ("/healthz", 200), ("/api", 403),
                           ("/api/v1/namespaces", 403)):  # fmt: skip
            async with session.get(f"{server.server.url}{path}") as response:
                assert response.status == code, path
        async with session.get(f"{server.server.url}/api") as response:
            body = await response.json()
    assert body["message"] == 'forbidden: User "system:anonymous" cannot get path "/api"'


async def test_subject_access_reviews_answer_for_another_user(server: Secured) -> None:
    await bind(server.admin, name="alice-admin", role="cluster-admin", namespace="default",
               subjects=[subject("User", "alice")])  # fmt: skip
    authz = client.AuthorizationV1Api(server.admin)

    async def allowed(user: str, verb: str, namespace: str) -> bool:
        review = await authz.create_subject_access_review({"spec": {
            "user": user, "resourceAttributes": {"verb": verb, "resource": "secrets",
                                                 "namespace": namespace}}})  # fmt: skip
        return bool(review.status.allowed)

    assert await allowed("alice", "delete", "default")
    assert not await allowed("alice", "delete", "kube-system")
    assert not await allowed("carol", "get", "default")
    async with server.as_token("carol-token") as api:
        own = await client.AuthorizationV1Api(api).create_self_subject_access_review(
            {"spec": {"resourceAttributes": {"verb": "get", "resource": "secrets"}}}
        )
        assert not own.status.allowed
        cannot = client.AuthorizationV1Api(api).create_subject_access_review(
            {"spec": {"user": "alice", "resourceAttributes": {"verb": "get"}}}
        )
        assert await status_of(cannot) == 403


async def test_impersonation_needs_the_impersonate_verb(server: Secured) -> None:
    await create(server.admin, "ClusterRole", {
        "metadata": {"name": "impersonator"},
        "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"],
                   "resourceNames": ["bob"]}],
    })  # fmt: skip
    await bind(server.admin, name="alice-impersonates", role="impersonator",
               subjects=[subject("User", "alice")])  # fmt: skip
    await bind(server.admin, name="bob-admin", role="cluster-admin",
               subjects=[subject("User", "bob")])  # fmt: skip
    async with server.as_token("alice-token", headers={"Impersonate-User": "bob"}) as api:
        review = await client.AuthenticationV1Api(api).create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
        assert review.status.user_info.username == "bob"
        assert review.status.user_info.groups == ["system:authenticated"]
        assert await status_of(client.CoreV1Api(api).list_namespaced_secret("default")) == 200
    async with server.as_token("alice-token", headers={"Impersonate-User": "dave"}) as api:
        with pytest.raises(ApiException) as refused:
            await client.CoreV1Api(api).list_namespace()
    assert json.loads(refused.value.body)["message"] == (
        'users "dave" is forbidden: User "alice" cannot impersonate resource "users" in API '
        'group "" at the cluster scope'
    )
    headers = {"Impersonate-User": "bob", "Impersonate-Group": "system:masters"}
    async with server.as_token("alice-token", headers=headers) as api:
        assert await status_of(client.CoreV1Api(api).list_namespace()) == 403


async def test_without_security_options_every_loopback_request_is_allowed() -> None:
    async with serve_apiserver() as running:
        assert not running.token_required
        assert running.url.startswith("http://")
        async with aiohttp.ClientSession() as session:
            review = {"apiVersion": "authorization.k8s.io/v1", "kind": SSAR, "spec": {
                "resourceAttributes": {"verb": "delete", "resource": "secrets"}}}  # fmt: skip
            url = f"{running.url}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
            async with session.post(url, json=review) as response:
                assert response.status == 201
                assert (await response.json())["status"]["allowed"] is True
            async with session.get(f"{running.url}/api/v1/secrets") as response:
                assert response.status == 200


async def test_a_refusal_is_audited_with_its_user_and_resource(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    options = SecurityOptions(authorization_mode="RBAC")
    async with (
        serve_apiserver(audit_log=audit, security=options) as running,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(f"{running.url}/api/v1/namespaces/default/secrets") as response:
            assert response.status == 403
        headers = {"Authorization": "Bearer wrong"}
        async with session.get(f"{running.url}/api/v1/namespaces", headers=headers) as response:
            assert response.status == 401
    refused, unauthenticated = (json.loads(line) for line in audit.read_text().splitlines())
    assert refused["user"] == "system:anonymous"
    assert (refused["verb"], refused["resource"], refused["namespace"], refused["code"]) == (
        "list",
        "secrets",
        "default",
        403,
    )
    assert (unauthenticated["user"], unauthenticated["code"]) == ("", 401)
