"""OIDC ID tokens (--oidc-* options): a token signed in the test with a key whose JWKS the
server is given authenticates a user whose bindings then apply and whose missing bindings
refuse; expired, wrongly signed, wrong-audience and malformed tokens get 401, nothing is
stored and the server stays up. Keys also come from an issuer's discovery document."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from engine.apiserver.authn.oidc import OidcOptions
from engine.apiserver.http.security import SecurityOptions
from tests.integration.auth_support import Secured, bind, secured, status_of, subject

ISSUER = "https://issuer.example.test"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**public, "kid": kid, "use": "sig", "alg": "RS256"}]}


def id_token(
    *, key: rsa.RSAPrivateKey = KEY, issuer: str = ISSUER, audience: str = "engine",
    expires_in: float = 300, email: str = "alice@example.com", groups: tuple[str, ...] = ("dev",),
) -> str:  # fmt: skip
    now = int(time.time())
    claims = {"iss": issuer, "aud": audience, "sub": "1234", "email": email,
              "email_verified": True, "groups": list(groups), "iat": now - 10,
              "exp": int(now + expires_in)}  # fmt: skip
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def options(jwks_file: Path | None, issuer: str = ISSUER) -> SecurityOptions:
    oidc = OidcOptions(
        issuer_url=issuer,
        client_id="engine",
        username_claim="email",
        groups_claim="groups",
        groups_prefix="oidc:",
        jwks_file=jwks_file,
    )
    return SecurityOptions(authorization_mode="RBAC", oidc=oidc)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Secured]:
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps(jwks(KEY, "k1")))
    async with secured(options(keys)) as running:
        await bind(running.admin, name="dev-view", role="view-configmaps", namespace="default",
                   subjects=[subject("Group", "oidc:dev")])  # fmt: skip
        rbac = client.RbacAuthorizationV1Api(running.admin)
        await rbac.create_cluster_role({
            "metadata": {"name": "view-configmaps"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        })  # fmt: skip
        yield running


async def test_a_signed_id_token_acts_through_its_group_bindings(server: Secured) -> None:
    async with server.as_token(id_token()) as api:
        core = client.CoreV1Api(api)
        listed = await core.list_namespaced_config_map("default")
        assert listed.items == []
        with pytest.raises(ApiException) as refused:
            await core.list_namespaced_secret("default")
        assert refused.value.status == 403
        body = json.loads(refused.value.body)
        assert body["reason"] == "Forbidden"
        assert body["message"] == (
            'secrets is forbidden: User "alice@example.com" cannot list resource "secrets" in '
            'API group "" in the namespace "default"'
        )
        with pytest.raises(ApiException) as elsewhere:
            await core.list_namespaced_config_map("kube-system")
        assert elsewhere.value.status == 403


async def test_the_user_name_and_groups_come_from_the_configured_claims(server: Secured) -> None:
    async with server.as_token(id_token(groups=("dev", "qa"))) as api:
        review = await client.AuthenticationV1Api(api).create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
    info = review.status.user_info
    assert info.username == "alice@example.com"
    assert info.groups == ["oidc:dev", "oidc:qa", "system:authenticated"]


BAD_TOKENS = [
    pytest.param(lambda: id_token(expires_in=-60), id="expired"),
    pytest.param(lambda: id_token(key=OTHER_KEY), id="wrongly-signed"),
    pytest.param(lambda: id_token(audience="someone-else"), id="other-audience"),
    pytest.param(lambda: "not-a-jwt", id="malformed"),
    pytest.param(lambda: id_token()[:-8] + "AAAAAAAA", id="tampered-signature"),
    pytest.param(lambda: id_token(issuer="https://elsewhere.test"), id="unknown-issuer"),
]


@pytest.mark.parametrize("make", BAD_TOKENS)
async def test_a_bad_id_token_gets_401_and_changes_nothing(server: Secured, make: Any) -> None:
    async with server.as_token(make()) as api:
        core = client.CoreV1Api(api)
        body = {"metadata": {"name": "sneaky"}, "data": {"a": "b"}}
        with pytest.raises(ApiException) as refused:
            await core.create_namespaced_config_map("default", body)
    assert refused.value.status == 401
    assert json.loads(refused.value.body)["reason"] == "Unauthorized"
    admin = client.CoreV1Api(server.admin)
    assert await status_of(admin.read_namespaced_config_map("sneaky", "default")) == 404
    assert (await admin.list_namespace()).items  # still serving


async def test_a_token_without_a_key_id_is_tried_against_every_key(tmp_path: Path) -> None:
    keys = tmp_path / "two-keys.json"
    both = jwks(OTHER_KEY, "k0")["keys"] + jwks(KEY, "k1")["keys"]
    keys.write_text(json.dumps({"keys": both}))
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "engine", "email": "bo@example.com", "exp": now + 60}
    token = jwt.encode(claims, KEY, algorithm="RS256")  # no kid header
    async with secured(options(keys)) as running, running.as_token(token) as api:
        review = await client.AuthenticationV1Api(api).create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
    assert review.status.user_info.username == "bo@example.com"


async def issuer_app(keys: dict[str, Any]) -> web.Application:
    async def discovery(request: web.Request) -> web.Response:
        base = f"http://{request.host}"
        return web.json_response({"issuer": base, "jwks_uri": f"{base}/keys"})

    async def serve_keys(request: web.Request) -> web.Response:
        return web.json_response(keys)

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/keys", serve_keys)
    return app


async def test_keys_are_fetched_from_the_issuers_discovery_document() -> None:
    runner = web.AppRunner(await issuer_app(jwks(KEY, "k1")))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    issuer = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with secured(options(None, issuer=issuer)) as running:
            async with running.as_token(id_token(issuer=issuer)) as api:
                review = await client.AuthenticationV1Api(api).create_self_subject_review(
                    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
                )
            assert review.status.user_info.username == "alice@example.com"
            async with running.as_token(id_token(issuer=issuer, key=OTHER_KEY)) as api:
                status = await status_of(client.CoreV1Api(api).list_namespace())
            assert status == 401
    finally:
        await runner.cleanup()
