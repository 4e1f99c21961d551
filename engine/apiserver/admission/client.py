"""HTTPS calls to webhooks: the endpoint a clientConfig names (a `url`; a `service`
cannot be reached, as this server has no cluster network), TLS verified against the
`caBundle` (or the system's CAs), a per-call timeout, and failures worded as Go's HTTP
client words them, which is what kube-apiserver's messages carry."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp


class CallFailed(Exception):
    """The webhook could not be called or gave no usable answer (failurePolicy applies)."""


def endpoint(client_config: Mapping[str, Any]) -> str:
    """The URL a clientConfig names; CallFailed for a service reference."""
    url = client_config.get("url")
    if url:
        return str(url)
    service = client_config.get("service") or {}
    name = f"{service.get('namespace', '')}/{service.get('name', '')}"
    raise CallFailed(
        f'failed to call webhook: service "{name}" cannot be reached: this API server has '
        "no cluster network to route service references (use clientConfig.url)"
    )


class WebhookClient:
    """One HTTP session for every webhook call, and a TLS context per caBundle."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}

    def _tls(self, ca_bundle: str) -> ssl.SSLContext:
        context = self._contexts.get(ca_bundle)
        if context is None:
            if ca_bundle:
                try:
                    pem = base64.b64decode(ca_bundle, validate=True).decode()
                    context = ssl.create_default_context(cadata=pem)
                except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError) as bad:
                    raise CallFailed(f"failed to call webhook: invalid caBundle: {bad}") from None
            else:
                context = ssl.create_default_context()
            self._contexts[ca_bundle] = context
        return context

    async def post(
        self, client_config: Mapping[str, Any], body: Mapping[str, Any], *, seconds: int
    ) -> dict[str, Any]:
        """POST `body` as JSON and return the decoded JSON answer; CallFailed otherwise."""
        url = endpoint(client_config)
        shown = f"{url}{'&' if '?' in url else '?'}timeout={seconds}s"
        tls = self._tls(str(client_config.get("caBundle") or ""))
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(seconds):
                async with self._session.post(
                    shown, data=json.dumps(body), ssl=tls,
                    headers={"Content-Type": "application/json", "Accept": "application/json"},
                ) as response:  # fmt: skip
                    raw = await response.read()
                    status = response.status
        except TimeoutError:
            raise CallFailed(
                f'failed to call webhook: Post "{shown}": context deadline exceeded'
            ) from None
        except aiohttp.ClientConnectorCertificateError as bad:
            raise CallFailed(
                f'failed to call webhook: Post "{shown}": tls: failed to verify certificate: '
                f"{bad.certificate_error}"
            ) from None
        except aiohttp.ClientConnectorError as bad:
            raise CallFailed(
                f'failed to call webhook: Post "{shown}": dial tcp {bad.host}:{bad.port}: '
                f"connect: {_reason(bad)}"
            ) from None
        except (aiohttp.ClientError, OSError) as bad:
            raise CallFailed(f'failed to call webhook: Post "{shown}": {bad}') from None
        if status != 200:
            raise CallFailed(
                f"failed to call webhook: the server responded with the status code {status} "
                f"but did not return more information"
            )
        try:
            answer = json.loads(raw)
        except ValueError as bad:
            raise CallFailed(f"received invalid webhook response: {bad}") from None
        if not isinstance(answer, dict):
            raise CallFailed("received invalid webhook response: the answer is not an object")
        return answer

    async def close(self) -> None:
        """Close the session (the server is stopping)."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _reason(error: aiohttp.ClientConnectorError) -> str:
    os_error = error.os_error
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    return str(os_error.strerror or os_error)
