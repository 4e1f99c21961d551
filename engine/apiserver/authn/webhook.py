"""The token-review webhook (--authentication-token-webhook-config-file): a kubeconfig
names the reviewer; each unknown token is POSTed to it as an authentication.k8s.io/v1
TokenReview, with a bounded timeout; accepted answers are cached for a TTL."""

from __future__ import annotations

import base64
import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from engine.apiserver.authn.errors import TokenRejected
from engine.apiserver.authn.user_info import UserInfo, user_from_review

LOG = logging.getLogger(__name__)


class WebhookConfigError(ValueError):
    """A webhook kubeconfig that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Reviewer:
    """Where and how to reach the reviewer: URL, TLS trust, and a client credential."""

    url: str
    ca_pem: bytes | None = None
    insecure: bool = False
    token: str | None = None
    client_cert: tuple[Path, Path] | None = None

    def ssl_context(self) -> ssl.SSLContext | bool:
        """The TLS settings for an https reviewer (True: the system's trust)."""
        if not self.url.startswith("https:"):
            return True
        context = ssl.create_default_context()
        if self.ca_pem is not None:
            context.load_verify_locations(cadata=self.ca_pem.decode())
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert is not None:
            context.load_cert_chain(str(self.client_cert[0]), str(self.client_cert[1]))
        return context


def _first(config: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    entries = config.get(key) or []
    if not entries or not isinstance(entries[0], dict):
        raise WebhookConfigError(f"webhook config {path}: no {key} entry")
    inner = entries[0].get(key[:-1]) or {}
    if not isinstance(inner, dict):
        raise WebhookConfigError(f"webhook config {path}: {key}[0] is not a mapping")
    return inner


def read_reviewer(path: Path) -> Reviewer:
    """The reviewer of a webhook kubeconfig (its first cluster and first user)."""
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise WebhookConfigError(f"webhook config {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise WebhookConfigError(f"webhook config {path}: not YAML ({error})") from None
    if not isinstance(config, dict):
        raise WebhookConfigError(f"webhook config {path}: not a kubeconfig")
    cluster = _first(config, "clusters", path)
    server = str(cluster.get("server") or "")
    if not server.startswith(("http://", "https://")):
        raise WebhookConfigError(f"webhook config {path}: clusters[0].cluster.server is no URL")
    ca_pem: bytes | None = None
    if cluster.get("certificate-authority-data"):
        ca_pem = base64.b64decode(str(cluster["certificate-authority-data"]))
    elif cluster.get("certificate-authority"):
        ca_pem = (path.parent / str(cluster["certificate-authority"])).read_bytes()
    user = _first(config, "users", path) if config.get("users") else {}
    cert, key = user.get("client-certificate"), user.get("client-key")
    return Reviewer(
        url=server,
        ca_pem=ca_pem,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token=str(user["token"]) if user.get("token") else None,
        client_cert=(path.parent / str(cert), path.parent / str(key)) if cert and key else None,
    )


class WebhookAuthenticator:
    """Asks the reviewer about each token; a reviewer that fails, answers badly or takes
    longer than `timeout` seconds rejects the token (401), never the server."""

    def __init__(self, reviewer: Reviewer, *, timeout: float, cache_ttl: float) -> None:
        self._reviewer = reviewer
        self._timeout = timeout
        self._cache_ttl = cache_ttl
        self._cache: dict[str, tuple[float, UserInfo | None]] = {}

    async def review(self, token: str) -> UserInfo | None:
        """The reviewer's user for `token`, None when it says unauthenticated."""
        reviewer = self._reviewer
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        headers = {"Authorization": f"Bearer {reviewer.token}"} if reviewer.token else {}
        try:
            async with (
                aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=self._timeout),
                    connector=aiohttp.TCPConnector(ssl=reviewer.ssl_context()),
                ) as session,
                session.post(reviewer.url, json=body, headers=headers) as response,
            ):
                if response.status != 200 and response.status != 201:
                    raise TokenRejected(f"token webhook answered {response.status}")
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError, ssl.SSLError) as error:
            raise TokenRejected(f"token webhook {reviewer.url}: {error!r}") from None
        status = answer.get("status") if isinstance(answer, dict) else None
        if not isinstance(status, dict):
            raise TokenRejected("token webhook: the answer has no status")
        if not status.get("authenticated"):
            return None
        user = user_from_review(status.get("user") or {})
        if not user.name:
            raise TokenRejected("token webhook: authenticated without a username")
        return user.with_authenticated()

    async def authenticate(self, token: str) -> UserInfo | None:
        """The user for `token` per the reviewer (cached answers within the TTL)."""
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        user = await self.review(token)
        if self._cache_ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()  # bounded: a flood of distinct tokens cannot grow it
            self._cache[token] = (now + self._cache_ttl, user)
        return user
