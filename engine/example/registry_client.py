"""A small async client for the registry service, as the example operator calls it.

Every write carries the effect's idempotency key and the leader's fencing term. Errors
come in three kinds the reconciler maps: retryable (with Retry-After), stale term (this
replica lost leadership) and permanent.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp


class RegistryError(Exception):
    """A registry call failed."""


class RetryableRegistryError(RegistryError):
    """503, 429, 5xx, a timeout or a lost connection: retry with the same key, no sooner than
    `retry_after` seconds when the service said so (the write may have been applied)."""

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StaleTermError(RegistryError):
    """409: the service has seen a higher fencing term; this writer is no longer the leader."""


class PermanentRegistryError(RegistryError):
    """Any other 4xx: retrying the same request cannot succeed."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Registration:
    """A registration as the service holds it."""

    name: str
    spec: dict[str, Any]
    revision: int
    term: int
    idempotency_key: str


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or
    unreadable. A date in the past gives 0."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    reference = time.time() if now is None else now
    return max(0.0, moment.timestamp() - reference)


class RegistryClient:
    """Calls one registry service at `base_url`; use as `async with RegistryClient(url) as c`."""

    def __init__(self, base_url: str, *, timeout_seconds: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RegistryClient:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def register(
        self, name: str, spec: dict[str, Any], *, idempotency_key: str, term: int
    ) -> Registration:
        """Create or update `name` (PUT). A repeated key returns the first call's result."""
        body = await self._write("PUT", name, spec, idempotency_key=idempotency_key, term=term)
        return Registration(**body)

    async def unregister(self, name: str, *, idempotency_key: str, term: int) -> bool:
        """Delete `name` (idempotent); whether this key's call found it registered."""
        body = await self._write("DELETE", name, None, idempotency_key=idempotency_key, term=term)
        return bool(body["deleted"])

    async def registrations(self) -> list[Registration]:
        """Every current registration."""
        body = await self._request("GET", "/registrations")
        return [Registration(**item) for item in body["items"]]

    async def calls(self) -> list[dict[str, Any]]:
        """The service's oracle log, one dict per call, oldest first."""
        body = await self._request("GET", "/calls")
        return list(body["items"])

    async def applied(self) -> dict[str, int]:
        """How many times each idempotency key was applied."""
        body = await self._request("GET", "/applied")
        return {str(key): int(count) for key, count in body["counts"].items()}

    async def set_faults(self, **changes: float) -> dict[str, float]:
        """Change injected faults (fields of `Faults`, plus `seed`); the faults now in force."""
        body = await self._request("POST", "/faults", json_body=changes)
        return {str(key): float(value) for key, value in body.items()}

    async def _write(
        self,
        method: str,
        name: str,
        spec: dict[str, Any] | None,
        *,
        idempotency_key: str,
        term: int,
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key, "X-Fencing-Term": str(term)}
        return await self._request(
            method, f"/registrations/{name}", json_body=spec, headers=headers
        )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        if self._session is None:
            raise RuntimeError("use RegistryClient inside `async with`")
        url = self.base_url + path
        try:
            async with self._session.request(
                method, url, json=json_body, headers=headers
            ) as response:
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
        except (TimeoutError, aiohttp.ClientError) as error:
            raise RetryableRegistryError(
                f"{method} {path}: {type(error).__name__} (the call may have been applied)",
                retry_after=None,
            ) from None
        message = body.get("error", "") if isinstance(body, dict) else ""
        if status == 409:
            raise StaleTermError(f"{method} {path}: {message or 'stale fencing term'}")
        if status == 429 or status >= 500:
            raise RetryableRegistryError(
                f"{method} {path}: HTTP {status} {message}".rstrip(), retry_after=retry_after
            )
        if status >= 400 or not isinstance(body, dict):
            raise PermanentRegistryError(
                f"{method} {path}: HTTP {status} {message}".rstrip(), status=status
            )
        return body
