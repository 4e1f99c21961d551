"""KubeWriter against the embedded API server: a 409 on a finalizer write is answered by
a re-read and a retry; 404 on delete counts as done; apply is idempotent; a 422 is a
permanent error; a refused connection is retryable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from engine.apiserver.http.embedded import serve_apiserver
from engine.effects.kube import KubePermanentError, KubeRetryableError, KubeWriter
from engine.identity import Kind
from engine.watchers import connect_kubeconfig
from tests.integration.reconcile_support import (
    GROUP,
    KIND,
    NAMESPACE,
    PLURAL,
    VERSION,
    WIDGETS,
    Api,
    ExternalService,
    install_crd,
    widget_operator,
)
from tests.support.fault_proxy import THROTTLE, FaultSettings, serve_fault_proxy

WIDGET = Kind(GROUP, VERSION, PLURAL, KIND)
CONFIGMAP = Kind("", "v1", "configmaps", "ConfigMap")
FINALIZER = "test.engine.dev/finalizer"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[Api, KubeWriter]]:
    async with (
        serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, server.url)
        await install_crd(api, widget_operator(ExternalService()))
        client = await connect_kubeconfig(server.kubeconfig_path)
        writer = KubeWriter(client)
        try:
            yield api, writer
        finally:
            await writer.close()
            await client.close()


async def test_finalizer_write_on_a_stale_version_rereads_and_keeps_the_other_change(
    cluster: tuple[Api, KubeWriter],
) -> None:
    api, writer = cluster
    stale = await api.create_widget("one", size=1)
    await api.merge(f"{WIDGETS}/one", {"metadata": {"finalizers": ["other/keep"]}})
    updated = await writer.add_finalizer(WIDGET, stale, FINALIZER)
    assert updated["metadata"]["finalizers"] == ["other/keep", FINALIZER]
    assert writer.requests == 3  # PATCH (409), GET, PATCH
    again = await writer.add_finalizer(WIDGET, updated, FINALIZER)
    assert again == updated
    assert writer.requests == 3  # already there: no request


async def test_removing_the_last_finalizer_of_a_deleted_object_reports_it_gone(
    cluster: tuple[Api, KubeWriter],
) -> None:
    api, writer = cluster
    await api.create_widget("two", size=1)
    await api.merge(f"{WIDGETS}/two", {"metadata": {"finalizers": [FINALIZER]}})
    assert await api.delete(f"{WIDGETS}/two") == 200
    deleting = await api.get(f"{WIDGETS}/two")
    assert deleting is not None
    result = await writer.remove_finalizer(WIDGET, deleting, FINALIZER)
    assert result is None or not result["metadata"].get("finalizers")
    assert await api.get(f"{WIDGETS}/two") is None
    assert await writer.remove_finalizer(WIDGET, deleting, FINALIZER) is None


async def test_apply_creates_once_and_is_idempotent_and_delete_of_a_missing_object_is_done(
    cluster: tuple[Api, KubeWriter],
) -> None:
    _, writer = cluster
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "applied", "namespace": NAMESPACE},
        "data": {"k": "v"},
    }
    first = await writer.apply(CONFIGMAP, manifest)
    second = await writer.apply(CONFIGMAP, manifest)
    assert first["metadata"]["uid"] == second["metadata"]["uid"]
    assert second["data"] == {"k": "v"}
    assert await writer.delete(CONFIGMAP, NAMESPACE, "applied", propagation="Background")
    assert not await writer.delete(CONFIGMAP, NAMESPACE, "applied", propagation="Background")


async def test_an_invalid_object_is_a_permanent_error(cluster: tuple[Api, KubeWriter]) -> None:
    _, writer = cluster
    bad = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": "bad", "namespace": NAMESPACE},
        "spec": {"size": "not a number"},
    }
    with pytest.raises(KubePermanentError, match="422"):
        await writer.apply(WIDGET, bad)


async def test_a_refused_connection_is_retryable(tmp_path: Path) -> None:
    async with serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server:
        client = await connect_kubeconfig(server.kubeconfig_path)
    try:
        writer = KubeWriter(client, timeout=2.0)
        with pytest.raises(KubeRetryableError):
            await writer.get(CONFIGMAP, NAMESPACE, "anything")
    finally:
        await client.close()


async def test_a_retry_after_holds_every_later_write_to_that_object(tmp_path: Path) -> None:
    # B.2 A3: Retry-After is a lower bound, whichever reconcile (a new generation, a
    # drift repair) asks next: nothing is sent to that object before it has passed.
    throttling = FaultSettings(rate=1.0, kinds=(THROTTLE,), methods=("PATCH",), retry_after=2)
    async with (
        serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server,
        serve_fault_proxy(server.url, throttling) as proxy,
    ):
        config = yaml.safe_load(server.kubeconfig_path.read_text())
        config["clusters"][0]["cluster"]["server"] = proxy.url
        through_proxy = tmp_path / "proxy-kubeconfig"
        through_proxy.write_text(yaml.safe_dump(config))
        client = await connect_kubeconfig(through_proxy)
        try:
            writer = KubeWriter(client)
            manifest = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "held", "namespace": NAMESPACE},
            }
            with pytest.raises(KubeRetryableError) as first:
                await writer.apply(CONFIGMAP, manifest)
            assert first.value.delay == 2
            with pytest.raises(KubeRetryableError, match="asked to wait") as second:
                await writer.apply(CONFIGMAP, manifest)
            assert 0 < second.value.delay <= 2
            assert writer.requests == 1  # the second write was never sent
            assert len(proxy.injected) == 1
        finally:
            await client.close()
