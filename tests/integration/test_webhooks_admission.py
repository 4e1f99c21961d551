"""The engine's webhook server over real HTTPS (TLS verified against the CA it issued):
AdmissionReview v1 answered by the operator's validate and mutate handlers, each decision
journaled on the object's webhook stream (no secret in it) and counted in the metrics;
handlers that raise, hang or break a rule, and malformed bodies, never take it down."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import jsonpatch
import pytest
from click.testing import CliRunner

from engine import AdmissionRequest, Operator, Rejected
from engine.cli.main import cli
from engine.journal.location import open_journal
from engine.journal.store import Journal
from engine.telemetry.metrics import EngineMetrics
from engine.webhooks.certificates import SelfSigned
from engine.webhooks.decisions import ADMISSION_DECIDED, webhook_stream
from engine.webhooks.server import RunningWebhooks, WebhookServerDeps, serve_webhooks
from tests.support.quota_operator import OPERATOR


@dataclass
class Served:
    running: RunningWebhooks
    journal: Journal
    metrics: EngineMetrics
    session: aiohttp.ClientSession

    async def post(self, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with self.session.post(
            self.running.url + path, data=data, headers={"Content-Type": "application/json"}
        ) as answer:
            return answer.status, await answer.json(content_type=None)

    async def decisions(self, name: str) -> list[dict[str, Any]]:
        stream = webhook_stream(group="webhooks.test", kind="Quota", namespace="default", name=name)
        return [
            dict(r.data)
            for r in await self.journal.read_stream(stream)
            if r.type == ADMISSION_DECIDED
        ]


@pytest.fixture
def serve(tmp_path: Path) -> Callable[[Operator], Any]:
    @contextlib.asynccontextmanager
    async def start(operator: Operator, deadline: float = 2.0) -> AsyncIterator[Served]:
        journal = await open_journal(tmp_path / "journal.db", redact=operator.secret_fields)
        metrics = EngineMetrics()
        deps = WebhookServerDeps(
            operator=operator,
            journal=journal,
            certificates=SelfSigned(tmp_path / "certs"),
            metrics=metrics,
            handler_timeout=deadline,
        )
        try:
            async with serve_webhooks(deps) as running:
                trust = ssl.create_default_context(cadata=running.ca_pem.decode())
                connector = aiohttp.TCPConnector(ssl=trust)
                async with aiohttp.ClientSession(connector=connector) as session:
                    yield Served(running, journal, metrics, session)
        finally:
            await journal.close()

    return start


def review(
    operation: str,
    obj: dict[str, Any] | None,
    old: dict[str, Any] | None = None,
    *,
    dry_run: bool = False,
) -> dict[str, Any]:
    subject = obj or old or {}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "webhooks.test", "version": "v1", "kind": "Quota"},
            "resource": {"group": "webhooks.test", "version": "v1", "resource": "quotas"},
            "name": subject["metadata"]["name"],
            "namespace": "default",
            "operation": operation,
            "userInfo": {"username": "alice", "uid": "u-1", "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": dry_run,
        },
    }


def quota(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "webhooks.test/v1",
        "kind": "Quota",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


async def test_validate_refuses_a_broken_rule_with_its_message_and_journals_each_decision(
    serve: Any, tmp_path: Path
) -> None:
    async with serve(OPERATOR) as served:
        bad = review("CREATE", quota("q1", minReplicas=5, maxReplicas=3, token="s3cr3t-token"))
        status, body = await served.post("/validate", bad)
        assert status == 200
        response = body["response"]
        assert response["uid"] == bad["request"]["uid"]
        assert response["allowed"] is False
        assert response["status"]["code"] == 403
        assert (
            "spec.minReplicas (5) must not exceed spec.maxReplicas (3)"
            in (response["status"]["message"])
        )
        good = review(
            "UPDATE",
            quota("q1", minReplicas=1, maxReplicas=3),
            quota("q1", minReplicas=5, maxReplicas=3),
            dry_run=True,
        )
        status, body = await served.post("/validate", good)
        assert (status, body["response"]["allowed"]) == (200, True)
        assert "patch" not in body["response"]

        refused, allowed = await served.decisions("q1")
        assert refused["result"] == "rejected"
        assert refused["user"] == "alice"
        assert refused["operation"] == "CREATE"
        assert refused["code"] == 403
        assert "[rule quota-range]" in refused["message"]
        assert allowed["result"] == "allowed"
        assert allowed["dry_run"] is True
        assert allowed["operation"] == "UPDATE"
        # the same review again (the API server retries) journals nothing new
        await served.post("/validate", bad)
        assert len(await served.decisions("q1")) == 2
        everything = [json.dumps(dict(r.data)) async for r in served.journal.read_all()]
        assert not any("s3cr3t-token" in text for text in everything)
        metrics = served.metrics.render().decode()
        assert 'engine_webhook_requests_total{handler="validate",result="rejected"} 2.0' in metrics
        assert 'engine_webhook_requests_total{handler="validate",result="allowed"} 1.0' in metrics
        assert 'engine_webhook_duration_seconds_count{handler="validate"} 3.0' in metrics
        journal_path = str(tmp_path / "journal.db")
    why = CliRunner().invoke(cli, ["why", "default/q1", journal_path])
    assert why.exit_code == 0, why.output
    assert "2 admission decision(s), 1 refused or failed" in why.output
    assert "validate UPDATE by alice (dry run): allowed" in why.output


async def test_mutate_fills_the_default_as_a_json_patch_with_its_digest_journaled(
    serve: Any,
) -> None:
    async with serve(OPERATOR) as served:
        obj = quota("q2", minReplicas=1, maxReplicas=20)
        status, body = await served.post("/mutate", review("CREATE", obj))
        response = body["response"]
        assert (status, response["allowed"], response["patchType"]) == (200, True, "JSONPatch")
        patch = json.loads(base64.b64decode(response["patch"]))
        assert patch == [{"op": "add", "path": "/spec/tier", "value": "large"}]
        assert jsonpatch.apply_patch(obj, patch)["spec"]["tier"] == "large"
        status, body = await served.post(
            "/mutate", review("CREATE", quota("q2", minReplicas=1, maxReplicas=2, tier="gold"))
        )
        assert "patch" not in body["response"]
        assert body["response"]["allowed"] is True
        patched, untouched = await served.decisions("q2")
        assert patched["patch_digest"].startswith("sha256:")
        assert patched["patch_operations"] == 1
        assert untouched["patch_digest"] is None


async def _hangs(request: AdmissionRequest) -> None:
    await asyncio.sleep(30)


def _raises(request: AdmissionRequest) -> None:
    raise KeyError("spec.missing")


async def _renames(request: AdmissionRequest) -> dict[str, Any]:
    obj = json.loads(json.dumps(request.object))
    obj["metadata"]["name"] = "other"
    return obj


async def _writes_status(request: AdmissionRequest) -> dict[str, Any]:
    obj = json.loads(json.dumps(request.object))
    obj["status"] = {"phase": "Ready"}
    return obj


def _names_the_token(request: AdmissionRequest) -> None:
    old = (request.old_object or {}).get("spec") or {}
    raise Rejected(f"token {old.get('token')} may not be rotated by {request.user.username}")


async def _returns_text(request: AdmissionRequest) -> str:
    return "not an object"


async def test_bad_handlers_and_bodies_get_error_answers_and_the_server_keeps_serving(
    serve: Any,
) -> None:
    operator = replace(OPERATOR, validate=_raises, mutate=_renames)
    async with serve(operator, deadline=0.3) as served:
        obj = quota("q3", minReplicas=1, maxReplicas=2)
        status, body = await served.post("/validate", review("CREATE", obj))
        # an error answer: the API server applies the webhook's failurePolicy
        assert status == 500
        assert body["kind"] == "Status"
        assert "the validate handler raised KeyError: 'spec.missing'" in body["message"]
        status, body = await served.post("/mutate", review("CREATE", obj))
        assert status == 200
        assert body["response"]["allowed"] is False
        assert (
            "changed metadata.name, which a mutating webhook may not change"
            in (body["response"]["status"]["message"])
        )
        for payload, expected in (
            (b"{not json", "not JSON"),
            ({"kind": "AdmissionReview"}, "apiVersion"),
            (
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "request": {"uid": "x", "operation": "PATCH"},
                },
                "operation",
            ),
        ):
            status, body = await served.post("/validate", payload)
            assert status == 400
            assert expected in body["message"]
        results = [d["result"] for d in await served.decisions("q3")]
        assert results == ["error", "rejected"]

    hangs = replace(OPERATOR, validate=_hangs, mutate=_writes_status)
    async with serve(hangs, deadline=0.3) as served:
        status, body = await served.post(
            "/validate", review("CREATE", quota("q4", minReplicas=1, maxReplicas=1))
        )
        assert status == 500
        assert "did not answer within 0.3 s" in body["message"]
        status, body = await served.post(
            "/mutate", review("CREATE", quota("q4", minReplicas=1, maxReplicas=1))
        )
        assert "changed status" in body["response"]["status"]["message"]
        status, body = await served.post(
            "/mutate", review("DELETE", None, quota("q4", minReplicas=1, maxReplicas=1))
        )
        assert body["response"]["allowed"] is True  # nothing to mutate on DELETE
        metrics = served.metrics.render().decode()
        assert 'engine_webhook_requests_total{handler="validate",result="error"} 1.0' in metrics

    returns_text = replace(OPERATOR, mutate=_returns_text, validate=_names_the_token)
    async with serve(returns_text) as served:
        status, body = await served.post(
            "/mutate", review("CREATE", quota("q5", minReplicas=1, maxReplicas=1))
        )
        assert "returned a str, not the object to store" in body["response"]["status"]["message"]
        update = review(
            "UPDATE",
            quota("q5", minReplicas=1, maxReplicas=1, token="new-one"),
            quota("q5", minReplicas=1, maxReplicas=1, token="old-s3cr3t"),
        )
        status, body = await served.post("/validate", update)
        assert body["response"]["status"]["message"] == (
            "token <redacted> may not be rotated by alice"
        )
        assert [d["message"] for d in await served.decisions("q5")][-1] == (
            "token <redacted> may not be rotated by alice"
        )
        async with served.session.get(served.running.url + "/healthz") as answer:
            assert answer.status == 200
