"""The administrator's bearer token: on a loopback address without one every request is
served (only local processes can connect); on any other address every request except
the health probes must carry the server's token (enforced by http/access.py)."""

from __future__ import annotations

import ipaddress
import secrets

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
