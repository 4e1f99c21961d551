"""The operator in README.md runs as written: its code block is executed and the
operator it defines reconciles a Greeting to Ready, then cleans up on delete."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from engine.apiserver.http.embedded import serve_apiserver
from engine.journal.sqlite import SqliteJournal
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.runtime.reconcile.operator import Operator
from engine.watchers import connect_kubeconfig
from tests.integration.reconcile_support import Api, eventually, fast_settings

README = Path(__file__).resolve().parents[2] / "README.md"
GREETINGS = "/apis/demo.example.com/v1/namespaces/default/greetings"


class Webhook:
    """The `webhook` the README leaves to the reader: calls recorded per key."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, int]] = []

    async def announce(self, name: str, *, idempotency_key: str, term: int) -> dict[str, Any]:
        self.calls.append(("announce", name, idempotency_key, term))
        return {"announced": name}

    async def retract(self, name: str, *, idempotency_key: str, term: int) -> None:
        self.calls.append(("retract", name, idempotency_key, term))


def journal_leaks(directory: Path, secret: bytes) -> list[str]:
    """The journal files (with -wal and -shm) under `directory` that contain `secret`."""
    return [p.name for p in directory.glob("journal.db*") if secret in p.read_bytes()]


def readme_operator(webhook: Webhook) -> Operator:
    section = README.read_text().split("## Writing an operator", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "the README has no operator example"
    namespace: dict[str, Any] = {"webhook": webhook, "__name__": "readme_example"}
    exec(compile(code.group(1), str(README), "exec"), namespace)
    operator = namespace["OPERATOR"]
    assert isinstance(operator, Operator)
    return operator


async def test_the_readme_operator_reconciles_a_greeting(tmp_path: Path) -> None:
    webhook = Webhook()
    operator = readme_operator(webhook)
    async with (
        serve_apiserver(kubeconfig_path=tmp_path / "kubeconfig") as server,
        aiohttp.ClientSession() as session,
    ):
        api = Api(session, server.url)
        crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        status, answer = await api.request("POST", crds, operator.resource.crd())
        assert status == 201, answer
        client = await connect_kubeconfig(server.kubeconfig_path)
        # the controller opens the journal itself, redacting the operator's secret fields
        controller = Controller(
            ControllerDeps(
                operator=operator,
                settings=fast_settings(tmp_path),
                api_client=client,
                handle_signals=False,
            )
        )
        task = asyncio.create_task(controller.run())
        try:
            await asyncio.wait_for(controller.ready.wait(), 15)
            body = {
                "apiVersion": "demo.example.com/v1",
                "kind": "Greeting",
                "metadata": {"name": "hi", "namespace": "default"},
                "spec": {"text": "hello ", "times": 2, "token": "s3cret"},
            }
            status, answer = await api.request("POST", GREETINGS, body)
            assert status == 201, answer

            async def ready() -> bool:
                greeting = await api.get(f"{GREETINGS}/hi")
                return bool(greeting) and (greeting.get("status") or {}).get("phase") == "Ready"

            await eventually(ready, "the Greeting is Ready")
            config = await api.get("/api/v1/namespaces/default/configmaps/hi-greeting")
            assert config is not None
            assert config["data"] == {"text": "hello hello "}
            assert [call[:2] for call in webhook.calls] == [("announce", "hi")]

            assert await api.delete(f"{GREETINGS}/hi") == 200

            async def gone() -> bool:
                return await api.get(f"{GREETINGS}/hi") is None

            await eventually(gone, "the Greeting is deleted")
            assert [call[:2] for call in webhook.calls] == [("announce", "hi"), ("retract", "hi")]
            announce_key = webhook.calls[0][2]
            assert announce_key.endswith(":1:announce")
        finally:
            await controller.stop()
            await task
            await client.close()
        journal = await SqliteJournal.open(tmp_path / "journal.db", readonly=True)
        try:
            assert await journal.verify() > 0
        finally:
            await journal.close()
        assert journal_leaks(tmp_path, b"s3cret") == []


async def test_a_journal_that_would_keep_secret_fields_in_clear_is_refused(
    tmp_path: Path,
) -> None:
    operator = readme_operator(Webhook())
    journal = await SqliteJournal.open(tmp_path / "journal.db")  # no redaction
    try:
        controller = Controller(
            ControllerDeps(
                operator=operator,
                settings=fast_settings(tmp_path),
                api_client=object(),  # never reached: the check comes first
                journal=journal,
                handle_signals=False,
                serve_health=False,
            )
        )
        with pytest.raises(ValueError, match=r"does not redact spec\.token"):
            await controller.run()
    finally:
        await journal.close()
