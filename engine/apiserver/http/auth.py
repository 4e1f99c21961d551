"""Bearer-token authentication for the API server when it listens beyond loopback: on a
loopback address every request is served (only local processes can connect); on any
other address every request except the health probes must carry the server's token."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from engine.apiserver.store.errors import ApiError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/livez"})
LOCAL_TOKEN = "engine-apiserver-local"
"""The placeholder token written to a loopback server's kubeconfig (not checked)."""


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def new_token() -> str:
    """A fresh random bearer token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def required_token(host: str, token: str | None) -> str | None:
    """The token a server on `host` must demand: `token` if given, a new one off loopback,
    None (no authentication) on loopback without one."""
    if token is not None:
        return token
    return None if is_loopback(host) else new_token()


def bearer_auth(token: str) -> Middleware:
    """A middleware answering 401 Unauthorized unless `Authorization: Bearer <token>`."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise ApiError(
                    401,
                    "Unauthorized: send the bearer token from the kubeconfig this server wrote",
                    reason="Unauthorized",
                )
        return await handler(request)

    return authenticate
