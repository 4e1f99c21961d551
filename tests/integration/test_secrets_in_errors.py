"""A careless handler puts the secret in its error text (R16, S6 "exception text"): the
engine scrubs it before it is journaled, so it reaches neither the journal (`.db`,
`-wal`), the status reason, an Event, a span, a log line, nor `/metrics` and the health
bodies. The engine runs in this process against the embedded API server over HTTP,
with a real OTLP receiver and JSON log lines captured."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from engine.apiserver.http.embedded import serve_apiserver
from engine.effects import PermanentError
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.operator import CustomResource, Operator
from engine.telemetry.logging import configure_logging
from engine.telemetry.setup import configure_tracing
from engine.watchers import connect_kubeconfig
from tests.integration.reconcile_support import Api, eventually, fast_settings
from tests.support.otlp_receiver import OtlpReceiver

GROUP, VERSION, KIND, PLURAL = "test.engine.dev", "v1", "Vault", "vaults"
VAULTS = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {"password": {"type": "string"}, "mode": {"type": "string"}},
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def leaky_operator(attempts: dict[str, int]) -> Operator:
    """Handlers that quote the password in every error they raise."""

    async def provision(ctx: Context) -> None:
        password = str(ctx.spec.get("password"))
        if ctx.spec.get("mode") == "refuse":
            raise PermanentError(f"the vault refused the password {password}")

        async def login(key: str) -> dict[str, Any]:
            attempts[key] = attempts.get(key, 0) + 1
            if attempts[key] == 1:
                raise ConnectionError(f"login as admin:{password}@vault failed")
            return {"logged_in": True}

        await ctx.effect("login", login)

    return Operator(
        resource=CustomResource(GROUP, VERSION, KIND, PLURAL, SCHEMA),
        provision=provision,
        secret_fields=("spec.password",),
    )


async def test_a_secret_in_handler_errors_is_scrubbed_everywhere(tmp_path: Path) -> None:
    refused_password, flaky_password = (f"canary{uuid.uuid4().hex}" for _ in range(2))
    canaries = (refused_password, flaky_password)
    attempts: dict[str, int] = {}
    lines = io.StringIO()
    handler = configure_logging(fmt="json", level="INFO", stream=lines)
    found: dict[str, bytes] = {}
    try:
        with OtlpReceiver() as receiver:
            tracing = configure_tracing(
                service_name_default="engine",
                env={
                    "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url,
                    "OTEL_BSP_SCHEDULE_DELAY": "50",
                },
            )
            async with (
                serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server,
                aiohttp.ClientSession() as session,
            ):
                api = Api(session, server.url)
                operator = leaky_operator(attempts)
                crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
                status, answer = await api.request("POST", crds, operator.resource.crd())
                assert status == 201, answer

                async def served() -> bool:
                    return (await api.request("GET", VAULTS))[0] == 200

                await eventually(served, "the Vault CRD is served")
                client = await connect_kubeconfig(server.kubeconfig_path)
                journal_path = tmp_path / "state" / "journal.db"
                controller = Controller(
                    ControllerDeps(
                        operator=operator,
                        settings=fast_settings(tmp_path / "state"),
                        api_client=client,
                        journal_path=journal_path,  # opened by the controller: its redaction
                        tracing=tracing,
                        handle_signals=False,
                    )
                )
                task = asyncio.create_task(controller.run())
                try:
                    await asyncio.wait_for(controller.ready.wait(), 15)
                    for name, mode, password in (
                        ("refused", "refuse", refused_password),
                        ("flaky", "flaky", flaky_password),
                    ):
                        body = {
                            "apiVersion": f"{GROUP}/{VERSION}",
                            "kind": KIND,
                            "metadata": {"name": name, "namespace": "default"},
                            "spec": {"mode": mode, "password": password},
                        }
                        status, made = await api.request("POST", VAULTS, body)
                        assert status == 201, made

                    async def phase(name: str) -> str | None:
                        vault = await api.get(f"{VAULTS}/{name}") or {}
                        return (vault.get("status") or {}).get("phase")

                    async def settled() -> bool:
                        return (await phase("refused"), await phase("flaky")) == (
                            "Failed",
                            "Ready",
                        )

                    await eventually(settled, "refused Failed and flaky Ready")
                    assert max(attempts.values()) == 2  # the flaky login failed once
                    found["journal -wal (running)"] = await asyncio.to_thread(
                        Path(f"{journal_path}-wal").read_bytes
                    )
                    refused = await api.get(f"{VAULTS}/refused")
                    assert refused is not None
                    assert refused["spec"]["password"] == refused_password
                    reason = refused["status"]["reason"]
                    assert "the vault refused the password <redacted>" in reason
                    for name in ("refused", "flaky"):
                        vault = await api.get(f"{VAULTS}/{name}")
                        found[f"status of {name}"] = json.dumps((vault or {})["status"]).encode()
                    events = await api.get("/api/v1/namespaces/default/events")
                    assert events is not None
                    assert events["items"]
                    assert any("<redacted>" in e.get("message", "") for e in events["items"])
                    found["Events"] = json.dumps(events).encode()
                    assert controller.health_url is not None
                    for path in ("/metrics", "/healthz", "/readyz"):
                        async with session.get(controller.health_url + path) as response:
                            found[path] = await response.read()
                finally:
                    await controller.stop()
                    await task
                    await client.close()
            spans = receiver.wait_for_spans(1)
    finally:
        logging.getLogger().removeHandler(handler)
    found["spans"] = repr(spans).encode()
    found["log lines"] = lines.getvalue().encode()
    for path in (tmp_path / "state").iterdir():
        found[f"state file {path.name}"] = path.read_bytes()
    failures = b"".join(v for k, v in found.items() if k.startswith(("state", "journal")))
    assert b"login as admin:<redacted>@vault failed" in failures

    leaks = [
        f"{value[:12]}... in {where}"
        for where, body in found.items()
        for value in canaries
        if value.encode() in body
    ]
    assert not leaks, leaks
