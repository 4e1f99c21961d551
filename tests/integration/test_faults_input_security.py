"""Credentials on the engine's two outward connections (B.7 S9, S10): the API server over
HTTPS with a bearer token (the embedded API server with TLS on, through the engine's
own `connect_kubeconfig` and kubernetes-asyncio; a Controller reconciles a Widget over
it, and its state dir, journal included, is searched for the token), and the OTLP
exporter's headers (a local OTLP receiver that refuses every export). Verification is on
unless a test flag says otherwise, and no credential reaches a log line (every logger at
DEBUG), an error message or a repr."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import yaml
from kubernetes_asyncio import client

from engine.apiserver.http.embedded import serve_apiserver
from engine.apiserver.http.security import SecurityOptions
from engine.journal.sqlite import SqliteJournal
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.telemetry import TelemetryConfigError, configure_tracing
from engine.watchers import connect_kubeconfig
from engine.watchers.client import INSECURE_TLS_ENV, ClusterConfigError, ClusterUnreachableError
from tests.integration.reconcile_support import (
    GROUP,
    PLURAL,
    VERSION,
    ExternalService,
    fast_settings,
    widget_operator,
)
from tests.support.otlp_receiver import OtlpReceiver


def rewritten(source: Path, target: Path, **changes: object) -> Path:
    """`source`'s kubeconfig with cluster fields (None: removed) or a user token changed."""
    config = yaml.safe_load(source.read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    for key, value in changes.items():
        place = user if key == "token" else cluster
        if value is None:
            place.pop(key, None)
        else:
            place[key] = value
    target.write_text(yaml.safe_dump(config))
    return target


async def test_tls_verification_is_on_and_the_bearer_token_reaches_no_log_or_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    options = SecurityOptions(authorization_mode="RBAC", secure_port=0, cert_dir=tmp_path / "pki")
    kubeconfig = tmp_path / "kubeconfig"
    async with serve_apiserver(kubeconfig_path=kubeconfig, security=options) as server:
        token = server.admin_token
        assert token
        assert server.url.startswith("https://")
        await reconcile_one_widget(kubeconfig, tmp_path / "state")
        messages: list[str] = []
        # no CA: the server's certificate is not trusted, so nothing is sent
        untrusted = rewritten(
            kubeconfig, tmp_path / "no-ca", **{"certificate-authority-data": None}
        )
        with pytest.raises(ClusterUnreachableError) as refused:
            await connect_kubeconfig(untrusted, probe_timeout=3)
        assert "certificate verify failed" in str(refused.value)
        messages.append(str(refused.value))
        # verification turned off in the kubeconfig: refused without the test flag
        insecure = rewritten(
            kubeconfig,
            tmp_path / "insecure",
            **{"certificate-authority-data": None, "insecure-skip-tls-verify": True},
        )
        with pytest.raises(ClusterConfigError) as off:
            await connect_kubeconfig(insecure)
        assert str(off.value).count("\n") == 0
        assert "insecure-skip-tls-verify" in str(off.value)
        assert INSECURE_TLS_ENV in str(off.value)
        messages.append(str(off.value))
        monkeypatch.setenv(INSECURE_TLS_ENV, "true")
        flagged = await connect_kubeconfig(insecure)
        await flagged.close()
        monkeypatch.delenv(INSECURE_TLS_ENV)
        # a wrong token: refused with 401, the error names neither token
        wrong = "wrong-" + token[::-1]
        api = await connect_kubeconfig(rewritten(kubeconfig, tmp_path / "wrong", token=wrong))
        try:
            with pytest.raises(client.ApiException) as unauthorized:
                await client.CoreV1Api(api).list_namespace()
        finally:
            await api.close()
        assert unauthorized.value.status == 401
        messages.append(str(unauthorized.value))
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert caplog.records, "nothing was logged at all"
    stored = b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir() if p.is_file())
    assert b"Widget" in stored, "the journal holds the engine's records"
    for secret in (token, wrong):
        assert secret not in logged
        assert all(secret not in message for message in messages)
        assert secret.encode() not in stored, "the token is in the state dir"


async def reconcile_one_widget(kubeconfig: Path, state: Path) -> None:
    """A Controller connected by `kubeconfig` (HTTPS, verified, a bearer token) reconciles
    a Widget to Ready; its journal, with `-wal` and `-shm`, stays in `state`."""
    api = await connect_kubeconfig(kubeconfig)
    service = ExternalService()
    operator = widget_operator(service)
    journal = await SqliteJournal.open(state / "journal.db", synchronous="NORMAL")
    try:
        assert api.configuration.verify_ssl
        await client.ApiextensionsV1Api(api).create_custom_resource_definition(
            operator.resource.crd()
        )
        controller = Controller(
            ControllerDeps(
                operator=operator,
                settings=fast_settings(state),
                api_client=api,
                journal=journal,
                handle_signals=False,
            )
        )
        task = asyncio.create_task(controller.run())
        try:
            await asyncio.wait_for(controller.ready.wait(), 15)
            custom = client.CustomObjectsApi(api)
            body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Widget",
                    "metadata": {"name": "tls"}, "spec": {"size": 1}}  # fmt: skip
            await custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body)
            for _ in range(300):
                got = await custom.get_namespaced_custom_object(
                    GROUP, VERSION, "default", PLURAL, "tls"
                )
                if (got.get("status") or {}).get("phase") == "Ready":
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the Widget is not Ready within 15 s over HTTPS")
        finally:
            await controller.stop()
            await task
    finally:
        await journal.close()
        await api.close()


def test_exporter_headers_reach_no_log_line_error_or_repr(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    canary = "otlp-canary-6b1f0e"
    with OtlpReceiver(status=401) as receiver:  # refuses every export: the failure is logged
        handle = configure_tracing(
            service_name_default="engine",
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url,
                "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{canary},x-org=shop",
                "OTEL_BSP_SCHEDULE_DELAY": "10",
            },
        )
        for number in range(5):
            with handle.tracer.start_as_current_span(f"work {number}"):
                pass
        handle.shutdown(timeout_s=2.0)
        assert receiver.requests >= 1, "the exporter sent its spans"
    assert ("authorization", f"Bearer {canary}") in handle.settings.headers
    assert canary not in repr(handle.settings)
    with pytest.raises(TelemetryConfigError) as bad:
        configure_tracing(
            service_name_default="engine",
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                "OTEL_EXPORTER_OTLP_HEADERS": f"x-org=shop,Bearer {canary}",
            },
        )
    assert "OTEL_EXPORTER_OTLP_HEADERS" in str(bad.value)
    assert canary not in str(bad.value)
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert canary not in logged
