"""The token-review webhook (--authentication-token-webhook-config-file): a small aiohttp
reviewer in the test authenticates a user whose bindings then apply and whose missing
bindings refuse; a reviewer that says no, is down, or is slower than the timeout gets
the client a 401 within the bound, and the server stays up."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from engine.apiserver.http.security import SecurityOptions
from tests.integration.auth_support import bind, secured, status_of, subject

USERS = {"wanda-token": {"username": "wanda", "uid": "42", "groups": ["ops"]}}
TIMEOUT = 0.5


@dataclass
class Reviewer:
    """The test's reviewer: what it was asked, and how it behaves."""

    url: str = ""
    asked: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0


async def serve_reviewer(reviewer: Reviewer) -> web.AppRunner:
    async def review(request: web.Request) -> web.Response:
        body = await request.json()
        reviewer.asked.append(body)
        await asyncio.sleep(reviewer.delay)
        user = USERS.get(body["spec"]["token"])
        status = {"authenticated": True, "user": user} if user else {"authenticated": False}
        return web.json_response({**body, "status": status})

    app = web.Application()
    app.router.add_post("/review", review)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    reviewer.url = f"http://127.0.0.1:{runner.addresses[0][1]}/review"
    return runner


def webhook_config(path: Path, url: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "reviewer", "cluster": {"server": url}}],
        "users": [{"name": "apiserver", "user": {"token": "shared-secret"}}],
        "contexts": [{"name": "webhook", "context": {"cluster": "reviewer", "user": "apiserver"}}],
        "current-context": "webhook",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
async def reviewer() -> AsyncIterator[Reviewer]:
    found = Reviewer()
    runner = await serve_reviewer(found)
    yield found
    await runner.cleanup()


def options(config: Path) -> SecurityOptions:
    return SecurityOptions(
        authorization_mode="RBAC",
        webhook_config_file=config,
        webhook_timeout=TIMEOUT,
        webhook_cache_ttl=0,
    )


async def test_a_reviewed_token_acts_through_its_bindings(
    reviewer: Reviewer, tmp_path: Path
) -> None:
    config = webhook_config(tmp_path / "webhook.yaml", reviewer.url)
    async with secured(options(config)) as server:
        await bind(server.admin, name="ops-edit", role="cluster-admin", namespace="default",
                   subjects=[subject("Group", "ops")])  # fmt: skip
        async with server.as_token("wanda-token") as api:
            core = client.CoreV1Api(api)
            await core.create_namespaced_config_map(
                "default", {"metadata": {"name": "by-wanda"}, "data": {"a": "b"}}
            )
            with pytest.raises(ApiException) as refused:
                await core.list_namespaced_config_map("kube-system")
            review = await client.AuthenticationV1Api(api).create_self_subject_review(
                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
            )
    assert refused.value.status == 403
    assert json.loads(refused.value.body)["message"] == (
        'configmaps is forbidden: User "wanda" cannot list resource "configmaps" in API group '
        '"" in the namespace "kube-system"'
    )
    assert review.status.user_info.username == "wanda"
    assert review.status.user_info.groups == ["ops", "system:authenticated"]
    assert reviewer.asked[0]["kind"] == "TokenReview"
    assert reviewer.asked[0]["apiVersion"] == "authentication.k8s.io/v1"
    assert reviewer.asked[0]["spec"]["token"] == "wanda-token"


async def test_a_token_the_reviewer_refuses_gets_401(reviewer: Reviewer, tmp_path: Path) -> None:
    config = webhook_config(tmp_path / "webhook.yaml", reviewer.url)
    async with secured(options(config)) as server, server.as_token("nobody") as api:
        status = await status_of(client.CoreV1Api(api).list_namespace())
    assert status == 401
    assert [asked["spec"]["token"] for asked in reviewer.asked] == ["nobody"]


async def test_a_reviewer_that_is_down_gets_the_client_401(tmp_path: Path) -> None:
    down = Reviewer()
    runner = await serve_reviewer(down)
    await runner.cleanup()  # the port is closed now
    config = webhook_config(tmp_path / "webhook.yaml", down.url)
    async with secured(options(config)) as server:
        async with server.as_token("wanda-token") as api:
            status = await status_of(client.CoreV1Api(api).list_namespace())
        assert status == 401
        assert (await client.CoreV1Api(server.admin).list_namespace()).items


async def test_a_slow_reviewer_is_cut_off_at_the_timeout(
    reviewer: Reviewer, tmp_path: Path
) -> None:
    reviewer.delay = 5.0
    config = webhook_config(tmp_path / "webhook.yaml", reviewer.url)
    async with secured(options(config)) as server:
        async with server.as_token("wanda-token") as api:
            started = time.monotonic()
            status = await status_of(client.CoreV1Api(api).list_namespace())
            waited = time.monotonic() - started
        assert status == 401
        assert waited < 3.0  # bounded by the 0.5 s timeout, not the reviewer's 5 s
        assert (await client.CoreV1Api(server.admin).list_namespace()).items


async def test_a_webhook_config_that_is_not_a_kubeconfig_is_refused_at_start(
    tmp_path: Path,
) -> None:
    config = tmp_path / "webhook.yaml"
    config.write_text("clusters: []\n")
    with pytest.raises(ValueError, match=r"webhook config .*webhook.yaml: no clusters entry"):
        async with secured(options(config)):
            pass
