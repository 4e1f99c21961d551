"""The Site handlers against the real registry service over HTTP; the handler backend is a
recording fake at its seam (the reconciler's runner is not the point here)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from engine.effects.errors import PermanentError, RetryableError
from engine.example.registry_client import RegistryClient
from engine.example.registry_service import Faults, serve_registry
from engine.example.site import SiteHandlers
from engine.runtime.context import Context, EffectFn


@dataclass
class RecordingBackend:
    """Runs each step at once and records what the handler asked for."""

    steps: list[str] = field(default_factory=list)
    children: list[Mapping[str, Any]] = field(default_factory=list)

    async def run_step(self, key: str, name: str, call: EffectFn) -> Any:
        self.steps.append(name)
        return await call(key)

    async def apply_child(self, key: str, manifest: Mapping[str, Any]) -> Mapping[str, Any]:
        self.steps.append(key.split(":")[2])
        self.children.append(manifest)
        return manifest


def context(backend: RecordingBackend, *, spec: dict[str, Any], term: int = 1) -> Context:
    return Context(
        name="blog",
        namespace="default",
        uid="uid-1",
        generation=1,
        round=0,
        spec=spec,
        metadata={"name": "blog", "namespace": "default"},
        term=term,
        logger=logging.getLogger("test"),
        backend=backend,
    )


@pytest.fixture
async def registry() -> AsyncIterator[RegistryClient]:
    async with serve_registry() as running, RegistryClient(running.url) as client:
        yield client


async def test_provision_applies_both_children_then_registers(registry: RegistryClient) -> None:
    backend = RecordingBackend()
    spec = {"domain": "blog.example.com", "replicas": 2, "password": "hunter2"}
    await SiteHandlers(registry).provision(context(backend, spec=spec))
    assert backend.steps == ["apply.configmap.blog-config", "apply.service.blog-web", "register"]
    [registration] = await registry.registrations()
    assert registration.name == "default.blog"
    assert registration.spec["replicas"] == 2
    assert "password" not in registration.spec
    assert registration.idempotency_key == "uid-1:1:register"


async def test_provision_twice_with_same_key_applies_once(registry: RegistryClient) -> None:
    handlers = SiteHandlers(registry)
    for _ in range(2):
        await handlers.provision(context(RecordingBackend(), spec={"domain": "b.example.com"}))
    assert await registry.applied() == {"uid-1:1:register": 1}


async def test_finalize_unregisters(registry: RegistryClient) -> None:
    handlers = SiteHandlers(registry)
    await handlers.provision(context(RecordingBackend(), spec={"domain": "b.example.com"}))
    backend = RecordingBackend()
    await handlers.finalize(context(backend, spec={"domain": "b.example.com"}))
    assert backend.steps == ["unregister"]
    assert await registry.registrations() == []


async def test_reserved_domain_fails_permanently_before_any_step(
    registry: RegistryClient,
) -> None:
    backend = RecordingBackend()
    with pytest.raises(PermanentError, match=r"invalid\.example is reserved"):
        await SiteHandlers(registry).provision(context(backend, spec={"domain": "invalid.example"}))
    assert backend.steps == []
    assert await registry.calls() == []


async def test_unavailable_registry_is_retryable_with_its_retry_after() -> None:
    faults = Faults(failure_rate=1.0, retry_after_seconds=7)
    async with serve_registry(faults=faults) as running, RegistryClient(running.url) as client:
        with pytest.raises(RetryableError) as raised:
            await SiteHandlers(client).provision(
                context(RecordingBackend(), spec={"domain": "b.example.com"})
            )
    assert raised.value.delay == 7


async def test_stale_term_is_retryable_not_a_failed_site(registry: RegistryClient) -> None:
    handlers = SiteHandlers(registry)
    await handlers.provision(context(RecordingBackend(), spec={"domain": "b.example.com"}, term=5))
    with pytest.raises(RetryableError, match="stale term") as raised:
        await handlers.finalize(
            context(RecordingBackend(), spec={"domain": "b.example.com"}, term=4)
        )
    assert not isinstance(raised.value, PermanentError)
    assert raised.value.delay > 0
