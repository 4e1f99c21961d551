"""A real HTTPS admission and conversion webhook for the tests, in its own thread and
event loop (so an API server in this process or in a child can call it): a self-signed
CA and a serving certificate for 127.0.0.1 made with `cryptography`, and aiohttp
handlers that validate, mutate and convert `Widget`s, plus ones that misbehave.

Widgets: v1 (storage) has `spec.domain`; v1alpha1 calls the same field `spec.host`.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

GROUP = "widgets.example.dev"
PLURAL = "widgets"
CROSS_FIELD_MESSAGE = "spec.replicas must not be greater than spec.maxReplicas"


def _certificates(directory: Path) -> tuple[Path, Path, bytes]:
    """(serving cert file, key file, CA PEM): a fresh CA signing a cert for 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = directory / "webhook.crt", directory / "webhook.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file, ca.public_bytes(serialization.Encoding.PEM)


def _answer(review: dict[str, Any], **response: Any) -> web.Response:
    body = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": review["request"]["uid"], "allowed": True, **response},
    }
    return web.json_response(body)


def _patch(operations: list[dict[str, Any]]) -> dict[str, str]:
    return {
        "patchType": "JSONPatch",
        "patch": base64.b64encode(json.dumps(operations).encode()).decode(),
    }


def convert_widget(obj: dict[str, Any], desired: str) -> dict[str, Any]:
    """A Widget as `desired` (v1 `spec.domain` is v1alpha1 `spec.host`)."""
    spec = dict(obj.get("spec") or {})
    if desired.endswith("/v1alpha1") and "domain" in spec:
        spec["host"] = spec.pop("domain")
    if desired.endswith("/v1") and "host" in spec:
        spec["domain"] = spec.pop("host")
    return {**obj, "apiVersion": desired, "spec": spec}


@dataclass
class WebhookServer:
    """The running webhook: its base URL, the CA bundle to configure, what it was sent."""

    url: str = ""
    ca_bundle: str = ""
    reviews: list[dict[str, Any]] = field(default_factory=list)
    conversions: list[dict[str, Any]] = field(default_factory=list)

    def sent(self, path: str) -> list[dict[str, Any]]:
        """The AdmissionReview requests one handler path received, in order."""
        return [r["request"] for r in self.reviews if r["path"] == path]

    def client_config(self, path: str) -> dict[str, str]:
        return {"url": f"{self.url}{path}", "caBundle": self.ca_bundle}

    def app(self) -> web.Application:
        async def record(request: web.Request) -> dict[str, Any]:
            review: dict[str, Any] = await request.json()
            self.reviews.append({**review, "path": request.path})
            return review

        async def validate(request: web.Request) -> web.Response:
            review = await record(request)
            obj = review["request"]["object"] or review["request"]["oldObject"]
            spec = obj.get("spec") or {}
            if review["request"]["operation"] == "DELETE":
                if (obj["metadata"].get("labels") or {}).get("protected") == "true":
                    status = {
                        "code": 403,
                        "reason": "Forbidden",
                        "message": "this widget is protected",
                    }
                    return _answer(review, allowed=False, status=status)
                return _answer(review)
            if spec.get("replicas", 0) > spec.get("maxReplicas", 10):
                status = {"code": 422, "reason": "Invalid", "message": CROSS_FIELD_MESSAGE}
                return _answer(review, allowed=False, status=status, warnings=["checked"])
            return _answer(review, warnings=["checked by validate"])

        async def mutate_owner(request: web.Request) -> web.Response:
            review = await record(request)
            spec = (review["request"]["object"] or {}).get("spec") or {}
            if "owner" in spec:
                return _answer(review)
            user = review["request"]["userInfo"]["username"]
            return _answer(review, **_patch([{"op": "add", "path": "/spec/owner", "value": user}]))

        async def mutate_tag(request: web.Request) -> web.Response:
            review = await record(request)
            owner = ((review["request"]["object"] or {}).get("spec") or {}).get("owner", "none")
            operation = {
                "op": "add",
                "path": "/metadata/annotations",
                "value": {"seen-owner": owner},
            }
            return _answer(review, **_patch([operation]))

        async def mutate_status(request: web.Request) -> web.Response:
            review = await record(request)
            return _answer(
                review, **_patch([{"op": "add", "path": "/status", "value": {"phase": "Forged"}}])
            )

        async def bad_patch(request: web.Request) -> web.Response:
            review = await record(request)
            return _answer(review, **_patch([{"op": "remove", "path": "/spec/nothing/here"}]))

        async def rename(request: web.Request) -> web.Response:
            review = await record(request)
            return _answer(
                review, **_patch([{"op": "replace", "path": "/metadata/name", "value": "other"}])
            )

        async def slow(request: web.Request) -> web.Response:
            review = await record(request)
            await asyncio.sleep(1.5)  # past the 1 s timeout the tests configure
            return _answer(review)

        async def convert(request: web.Request) -> web.Response:
            review: dict[str, Any] = await request.json()
            self.conversions.append(review)
            desired = review["request"]["desiredAPIVersion"]
            objects = [convert_widget(o, desired) for o in review["request"]["objects"]]
            if request.path == "/convert-drop":
                objects = objects[1:]
            response = {"uid": review["request"]["uid"], "convertedObjects": objects,
                        "result": {"status": "Success"}}  # fmt: skip
            return web.json_response({**review, "response": response})

        app = web.Application()
        for path, handler in (("/validate", validate), ("/mutate-owner", mutate_owner),
                              ("/mutate-tag", mutate_tag), ("/mutate-status", mutate_status),
                              ("/bad-patch", bad_patch), ("/rename", rename), ("/slow", slow),
                              ("/convert", convert), ("/convert-drop", convert)):  # fmt: skip
            app.router.add_post(path, handler)
        return app


def closed_port_url() -> str:
    """An https URL on 127.0.0.1 where nothing listens (a webhook that is stopped)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"https://127.0.0.1:{port}/validate"


@contextmanager
def running_webhook() -> Iterator[WebhookServer]:
    """Serve the webhook over HTTPS on a free loopback port until the block ends."""
    server = WebhookServer()
    started = threading.Event()
    loop = asyncio.new_event_loop()
    scratch = tempfile.TemporaryDirectory(prefix="webhook-test-")
    cert_file, key_file, ca_pem = _certificates(Path(scratch.name))
    server.ca_bundle = base64.b64encode(ca_pem).decode()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(str(cert_file), str(key_file))
    runner = web.AppRunner(server.app(), shutdown_timeout=0.5)

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        server.url = f"https://127.0.0.1:{runner.addresses[0][1]}"
        started.set()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="webhook-server", daemon=True)
    thread.start()
    assert started.wait(10), "the webhook server did not start"
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        scratch.cleanup()


def _widget_schema(name_field: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    name_field: {"type": "string"},
                    "replicas": {"type": "integer", "minimum": 0},
                    "maxReplicas": {"type": "integer", "default": 10},
                    "owner": {"type": "string"},
                },
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }


def widget_crd(conversion: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Widget CRD: v1 (storage, `spec.domain`) and v1alpha1 (`spec.host`), both served."""
    versions = [
        {"name": version, "served": True, "storage": version == "v1",
         "schema": {"openAPIV3Schema": _widget_schema(field_name)},
         "subresources": {"status": {}},
         "additionalPrinterColumns": [
             {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}]}
        for version, field_name in (("v1", "domain"), ("v1alpha1", "host"))
    ]  # fmt: skip
    spec: dict[str, Any] = {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget"},
        "versions": versions,
    }
    if conversion is not None:
        spec["conversion"] = conversion
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": spec,
    }


def conversion_webhook(server: WebhookServer, path: str = "/convert") -> dict[str, Any]:
    """A CRD `spec.conversion` sending ConversionReviews to `path`."""
    return {
        "strategy": "Webhook",
        "webhook": {"clientConfig": server.client_config(path), "conversionReviewVersions": ["v1"]},
    }


def webhook(
    name: str,
    client_config: dict[str, str],
    *,
    resources: tuple[str, ...] = (PLURAL,),
    operations: tuple[str, ...] = ("CREATE", "UPDATE"),
    versions: tuple[str, ...] = ("*",),
    labels: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One webhook entry on Widgets, selecting objects labelled `labels`."""
    return {
        "name": name,
        "clientConfig": client_config,
        "rules": [{"operations": list(operations), "apiGroups": [GROUP],
                   "apiVersions": list(versions), "resources": list(resources)}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        **({"objectSelector": {"matchLabels": labels}} if labels else {}),
        **extra,
    }  # fmt: skip


def configuration(kind: str, name: str, *hooks: dict[str, Any]) -> dict[str, Any]:
    """A Validating- or MutatingWebhookConfiguration object."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": list(hooks),
    }
