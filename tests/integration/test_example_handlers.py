"""The Site handlers against the real registry service over HTTP, each run in the test
kit's handler environment (the engine's effect runner and step backend over in-memory
parts), so steps run under their real keys."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.example.registry_client import RegistryClient
from engine.example.registry_service import Faults, serve_registry
from engine.example.site import site_operator
from engine.testing import HandlerEnvironment

SITE = {"name": "blog", "uid": "uid-1"}


@pytest.fixture
async def registry() -> AsyncIterator[RegistryClient]:
    async with serve_registry() as running, RegistryClient(running.url) as client:
        yield client


def environment(registry: RegistryClient, *, term: int = 1) -> HandlerEnvironment:
    return HandlerEnvironment(site_operator(registry), term=term)


async def test_provision_applies_both_children_then_registers(registry: RegistryClient) -> None:
    spec = {"domain": "blog.example.com", "replicas": 2, "password": "hunter2"}
    run = await environment(registry).provision(spec, **SITE)
    assert run.outcome == "succeeded"
    assert run.step_names() == ["apply.configmap.blog-config", "apply.service.blog-web", "register"]
    [registration] = await registry.registrations()
    assert registration.name == "default.blog"
    assert registration.spec["replicas"] == 2
    assert "password" not in registration.spec
    assert registration.idempotency_key == "uid-1:1:register"


async def test_provision_twice_with_same_key_applies_once(registry: RegistryClient) -> None:
    for _ in range(2):  # two environments: two fresh journals, so the call is made twice
        run = await environment(registry).provision({"domain": "b.example.com"}, **SITE)
        assert run.effect_keys() == ["uid-1:1:register"]
    assert await registry.applied() == {"uid-1:1:register": 1}


async def test_finalize_unregisters(registry: RegistryClient) -> None:
    env = environment(registry)
    await env.provision({"domain": "b.example.com"}, **SITE)
    run = await env.finalize({"domain": "b.example.com"}, **SITE)
    assert run.step_names() == ["unregister"]
    assert await registry.registrations() == []


async def test_reserved_domain_fails_permanently_before_any_step(
    registry: RegistryClient,
) -> None:
    run = await environment(registry).provision({"domain": "invalid.example"}, **SITE)
    assert run.outcome == "failed"
    assert run.reason is not None
    assert "invalid.example is reserved" in run.reason
    assert run.step_names() == []
    assert await registry.calls() == []


async def test_unavailable_registry_is_retryable_with_its_retry_after() -> None:
    faults = Faults(failure_rate=1.0, retry_after_seconds=7)
    async with serve_registry(faults=faults) as running, RegistryClient(running.url) as client:
        run = await environment(client).provision({"domain": "b.example.com"}, **SITE)
    assert run.outcome == "retry"
    assert run.retry_after == 7


async def test_stale_term_is_retryable_not_a_failed_site(registry: RegistryClient) -> None:
    env = environment(registry, term=5)
    await env.provision({"domain": "b.example.com"}, **SITE)
    env.term = 4
    run = await env.finalize({"domain": "b.example.com"}, **SITE)
    assert run.outcome == "retry"
    assert run.phase != "Failed"
    assert run.reason is not None
    assert "stale term" in run.reason
    assert run.retry_after is not None
    assert run.retry_after > 0


async def test_a_site_with_an_image_waits_for_its_deployment_before_registering(
    registry: RegistryClient,
) -> None:
    env = environment(registry)
    spec = {"domain": "blog.example.com", "replicas": 2, "image": "nginx:1.27"}
    waiting = await env.provision(spec, **SITE)
    assert waiting.outcome == "retry"
    assert "(waiting for Deployment blog-web (0 of 2 replicas updated) to be Ready)" in (
        waiting.reason or ""
    )
    assert [c["kind"] for c in waiting.children] == ["ConfigMap", "Service", "Deployment"]
    [deployment] = [c for c in waiting.children if c["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert await registry.registrations() == []  # not registered while it waits

    for _ in range(20):  # a wait never gives up, however long it lasts
        env.clock.advance(5)
        assert (await env.provision(spec, **SITE)).outcome == "retry"

    env.set_child_status(
        "Deployment",
        "blog-web",
        {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2},
    )
    env.clock.advance(5)
    done = await env.provision(spec, **SITE)
    assert done.outcome == "succeeded", done.reason
    assert done.step_names()[-2:] == ["ready.deployment.blog-web", "register"]
    [registration] = await registry.registrations()
    assert registration.name == "default.blog"


async def test_a_site_without_an_image_has_no_deployment(registry: RegistryClient) -> None:
    run = await environment(registry).provision({"domain": "b.example.com"}, **SITE)
    assert [c["kind"] for c in run.children] == ["ConfigMap", "Service"]
