"""B.2 A3 through the fault proxy: a Retry-After given as an HTTP-date holds the object
for the time it names, and a huge delay-seconds holds it only for the cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import yaml

from engine.apiserver.http.embedded import serve_apiserver
from engine.effects.kube import KubeRetryableError, KubeWriter
from engine.identity import Kind
from engine.watchers import connect_kubeconfig
from tests.support.fault_proxy import THROTTLE, FaultSettings, serve_fault_proxy

CONFIGMAP = Kind("", "v1", "configmaps", "ConfigMap")
MANIFEST = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "held", "namespace": "default"},
}


async def _first_and_held_delays(
    tmp_path: Path, retry_after: int | str, *, cap: float
) -> tuple[float, float, int]:
    """Apply through a proxy that throttles every PATCH with `retry_after`; return the
    first error's delay, the second's (never sent) and the requests the writer sent."""
    throttling = FaultSettings(
        rate=1.0, kinds=(THROTTLE,), methods=("PATCH",), retry_after=retry_after
    )
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
            writer = KubeWriter(client, retry_after_cap=cap)
            with pytest.raises(KubeRetryableError) as first:
                await writer.apply(CONFIGMAP, MANIFEST)
            with pytest.raises(KubeRetryableError, match="asked to wait") as second:
                await writer.apply(CONFIGMAP, MANIFEST)
            assert len(proxy.injected) == 1
            return first.value.delay, second.value.delay, writer.requests
        finally:
            await client.close()


async def test_an_http_date_retry_after_holds_the_object_until_that_date(
    tmp_path: Path,
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    first, held, sent = await _first_and_held_delays(tmp_path, when, cap=60.0)
    assert 17.0 < first <= 20.0  # not the flat second an unread date used to give
    assert 0 < held <= first
    assert sent == 1


async def test_an_hour_long_retry_after_holds_the_object_only_for_the_cap(
    tmp_path: Path,
) -> None:
    first, held, sent = await _first_and_held_delays(tmp_path, 3600, cap=5.0)
    assert first == 5.0
    assert 0 < held <= 5.0
    assert sent == 1
