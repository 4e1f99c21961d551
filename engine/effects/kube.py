"""The engine's Kubernetes writes: finalizers, status, children (server-side apply), child
deletion and Events, over one kubernetes-asyncio `ApiClient`, with API errors mapped to
the effect error classes (409 → re-read and retry; 429/5xx → retryable with Retry-After,
as the server's unavailability; 403/422 → permanent; 404 on delete → done; connection
errors and timeouts → retryable, as unavailability).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from engine.clock import Clock, SystemClock
from engine.effects import api_json
from engine.effects.backoff import RETRY_AFTER_CAP, retry_after_seconds
from engine.effects.errors import PermanentError, RetryableError, ServerUnavailable
from engine.effects.kube_client import ApiClient
from engine.identity import Kind

FIELD_MANAGER: Final = "engine"
MERGE_PATCH: Final = "application/merge-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"
_AUTH: Final = ["BearerToken"]
_PERMANENT_CODES: Final = frozenset({400, 401, 403, 405, 415, 422})
CONFLICT_RETRIES: Final = 3
"""How many times a 409 on a finalizer write is answered by a re-read and a new try."""


EVENTS: Final = Kind("", "v1", "events", "Event")


class KubeApiError(Exception):
    """A non-2xx answer: `code`, the Status `reason` and `message`, and Retry-After."""

    def __init__(self, code: int, reason: str, message: str, *, retry_after: float) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


class KubeRetryableError(RetryableError):
    """A write that may succeed later (429, 5xx, 409 left after re-reads, connection)."""


class KubeUnavailableError(KubeRetryableError, ServerUnavailable):
    """The API server could not take the request for now (429, 5xx, a connection error
    or no answer in time): an effect retries it with backoff and never gives up on it."""


class KubePermanentError(PermanentError):
    """A write the API server refuses for good (403, 422, ...): fix RBAC or the object."""


def as_effect_error(error: KubeApiError, what: str) -> RetryableError | PermanentError:
    """The effect error class of an API error met while doing `what`."""
    text = f"{what}: {error.code} {error.reason}: {error.message}"
    if error.code in _PERMANENT_CODES:
        return KubePermanentError(text)
    if error.code == 429 or error.code >= 500:
        return KubeUnavailableError(text, delay=error.retry_after)
    return KubeRetryableError(text, delay=error.retry_after)


class KubeWriter:
    """Every write the engine makes to the cluster.

    Guarantees: each method is one request on the happy path (finalizer writes re-read
    and retry on 409, at most `CONFLICT_RETRIES` times); the object the API server
    returned is handed back so the caller's view is current without a GET.
    Errors: `KubeRetryableError` (a `RetryableError` with `.delay` = Retry-After) and
    `KubePermanentError` (a `PermanentError`), with messages naming the object.
    A Retry-After (delay-seconds or an HTTP-date, read against `clock`) holds the object's
    path for at most `retry_after_cap` seconds.
    Assumption: the caller owns and closes `api`.
    """

    def __init__(
        self,
        api: ApiClient,
        *,
        field_manager: str = FIELD_MANAGER,
        timeout: float = 30.0,
        retry_after_cap: float = RETRY_AFTER_CAP,
        clock: Clock | None = None,
    ) -> None:
        self._api = api
        self._retry_after_cap = retry_after_cap
        self._clock = clock or SystemClock()
        self._field_manager = field_manager
        self._timeout = timeout
        self._transport: _Transport | None = None
        self._not_before: dict[str, float] = {}  # path -> loop time its Retry-After ends
        self.requests = 0
        """Requests sent (for benchmarks and the "no unneeded request" checks)."""

    # -- finalizers ------------------------------------------------------------------------

    async def add_finalizer(
        self, kind: Kind, obj: Mapping[str, Any], finalizer: str
    ) -> dict[str, Any]:
        """Add `finalizer` to `obj` (a merge patch guarded by its resourceVersion); return
        the updated object. A no-op (no request) when it is already there."""
        return await self._set_finalizer(kind, obj, finalizer, present=True)

    async def remove_finalizer(
        self, kind: Kind, obj: Mapping[str, Any], finalizer: str
    ) -> dict[str, Any] | None:
        """Remove `finalizer`; return the updated object, or None when the object is gone
        (404, or the API server deleted it as its last finalizer went)."""
        try:
            return await self._set_finalizer(kind, obj, finalizer, present=False)
        except _Gone:
            return None

    async def _set_finalizer(
        self, kind: Kind, obj: Mapping[str, Any], finalizer: str, *, present: bool
    ) -> dict[str, Any]:
        current: Mapping[str, Any] = obj
        metadata = current.get("metadata", {})
        namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
        what = f"{'add' if present else 'remove'} finalizer of {kind.kind} {namespace}/{name}"
        path = kind.path(namespace, name)
        for _ in range(CONFLICT_RETRIES + 1):
            finalizers = list(current.get("metadata", {}).get("finalizers") or [])
            if (finalizer in finalizers) == present:
                return dict(current)
            if present:
                finalizers.append(finalizer)
            else:
                finalizers = [f for f in finalizers if f != finalizer]
            version = str(current.get("metadata", {}).get("resourceVersion") or "")
            body = {"metadata": {"finalizers": finalizers, "resourceVersion": version}}
            try:
                return await self._request("PATCH", path, body=body, content_type=MERGE_PATCH)
            except KubeApiError as error:
                if error.code == 404:
                    raise _Gone() from None
                if error.code != 409:
                    raise as_effect_error(error, what) from None
            try:
                current = await self._request("GET", path)
            except KubeApiError as error:
                if error.code == 404:
                    raise _Gone() from None
                raise as_effect_error(error, what) from None
        raise KubeRetryableError(f"{what}: still conflicting after {CONFLICT_RETRIES} re-reads")

    # -- status ----------------------------------------------------------------------------

    async def patch_status(
        self, kind: Kind, obj: Mapping[str, Any], status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch `status` into the status subresource; return the updated object, or
        None when the object is gone (404)."""
        metadata = obj.get("metadata", {})
        namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
        path = kind.path(namespace, name, "status")
        try:
            return await self._request(
                "PATCH", path, body={"status": dict(status)}, content_type=MERGE_PATCH
            )
        except KubeApiError as error:
            if error.code == 404:
                return None
            raise as_effect_error(
                error, f"patch status of {kind.kind} {namespace}/{name}"
            ) from None

    # -- children --------------------------------------------------------------------------

    async def apply(self, kind: Kind, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply `manifest` (fieldManager, force): one request that creates
        the object when missing and is idempotent; return the live object."""
        metadata = manifest.get("metadata", {})
        namespace, name = str(metadata.get("namespace") or ""), str(metadata["name"])
        query = [("fieldManager", self._field_manager), ("force", "true")]
        try:
            return await self._request(
                "PATCH",
                kind.path(namespace, name),
                body=dict(manifest),
                content_type=APPLY_PATCH,
                query=query,
            )
        except KubeApiError as error:
            raise as_effect_error(error, f"apply {kind.kind} {namespace}/{name}") from None

    async def delete(self, kind: Kind, namespace: str, name: str, *, propagation: str) -> bool:
        """Delete one object with `propagation` (Background, Foreground, Orphan); True if
        it was there, False on 404 (already gone counts as done)."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        try:
            await self._request("DELETE", kind.path(namespace, name), body=body)
        except KubeApiError as error:
            if error.code == 404:
                return False
            raise as_effect_error(error, f"delete {kind.kind} {namespace}/{name}") from None
        return True

    # -- events ----------------------------------------------------------------------------

    async def record_event(
        self,
        involved: Mapping[str, Any],
        *,
        name: str,
        reason: str,
        message: str,
        warning: bool = False,
        now: datetime | None = None,
    ) -> None:
        """Create a core v1 Event about `involved` named `name` (deterministic, so a retry
        finds it: 409 AlreadyExists counts as done). Type Warning when `warning`."""
        metadata = involved.get("metadata", {})
        namespace = str(metadata.get("namespace") or "default")
        stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": metadata.get("name"),
                "namespace": namespace,
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": self._field_manager},
            "reportingComponent": self._field_manager,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self._request("POST", EVENTS.path(namespace), body=body)
        except KubeApiError as error:
            if error.code == 409:
                return
            raise as_effect_error(error, f"record event {namespace}/{name}") from None

    # -- reads (only when the caller has no view of the object) --------------------------

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The live object, or None (404)."""
        try:
            return await self._request("GET", kind.path(namespace, name))
        except KubeApiError as error:
            if error.code == 404:
                return None
            raise as_effect_error(error, f"read {kind.kind} {namespace}/{name}") from None

    # -- transport -------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        now = asyncio.get_running_loop().time()
        wait = self._not_before.get(path, now) - now
        if wait > 0:  # the server's Retry-After for this object is a lower bound (R7)
            raise KubeUnavailableError(
                f"{method} {path}: the API server asked to wait {wait:.2f} s more", delay=wait
            )
        headers = {"Accept": "application/json", "Content-Type": content_type}
        self.requests += 1
        try:
            raw, response = await self._send(method, path, headers, body, query or [])
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            detail = str(error) or type(error).__name__
            raise KubeUnavailableError(f"{method} {path}: {detail}") from None
        document = _decode(raw)
        if 200 <= response.status < 300:
            if not isinstance(document, dict):
                raise KubeRetryableError(f"{method} {path}: the answer is not a JSON object")
            return document
        status = document if isinstance(document, dict) else {}
        retry_after = (
            retry_after_seconds(
                response.headers.get("Retry-After"),
                now=self._clock.now(),
                cap=self._retry_after_cap,
            )
            or 0.0
        )
        if retry_after > 0:
            self._hold(path, retry_after)
        raise KubeApiError(
            response.status,
            str(status.get("reason") or response.reason or ""),
            str(status.get("message") or raw[:300].decode("utf-8", errors="replace")),
            retry_after=retry_after,
        )

    def _hold(self, path: str, seconds: float) -> None:
        """Send nothing to `path` for `seconds` (whichever reconcile asks next)."""
        now = asyncio.get_running_loop().time()
        self._not_before = {p: t for p, t in self._not_before.items() if t > now}
        self._not_before[path] = max(self._not_before.get(path, now), now + seconds)

    async def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Mapping[str, Any] | None,
        query: list[tuple[str, str]],
    ) -> tuple[bytes, aiohttp.ClientResponse]:
        """One request with the client's host, TLS, proxy, default headers and credentials
        (refreshed tokens included), straight over its connection pool: no model
        (de)serialisation, and no proxy or netrc lookup in a thread per request."""
        api = self._api
        transport = self._transport or _Transport.of(api)
        self._transport = transport
        headers.update(api.default_headers)
        if api.cookie:
            headers["Cookie"] = api.cookie
        await api.update_params_for_auth(headers, query, _AUTH)
        url = f"{api.configuration.host or ''}{path}"
        if query:
            url = f"{url}?{urlencode(query)}"
        data = None if body is None or method == "GET" else _encode(api, body)
        async with transport.session.request(
            method,
            url,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            **transport.options,
        ) as response:
            return await response.read(), response

    async def close(self) -> None:
        """Close the writer's session (not the pool under it: the caller still owns and
        closes `api`, whose pool it is)."""
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.session.close()


@dataclass(frozen=True)
class _Transport:
    """A session without environment lookups over the `ApiClient`'s own connection pool
    (the pool is closed with the client; `KubeWriter.close` closes the session), and the
    proxy and TLS server name the client's session would use, resolved once."""

    session: aiohttp.ClientSession
    options: Mapping[str, Any]

    @classmethod
    def of(cls, api: ApiClient) -> _Transport:
        rest = api.rest_client
        host = URL(api.configuration.host or "")
        options: dict[str, Any] = {}
        if rest.proxy:
            options["proxy"] = rest.proxy
        else:
            with contextlib.suppress(LookupError):
                options["proxy"], options["proxy_auth"] = get_env_proxy_for_url(host)
        if rest.proxy_headers:
            options["proxy_headers"] = rest.proxy_headers
        if rest.server_hostname:
            options["server_hostname"] = rest.server_hostname
        pool: aiohttp.ClientSession = rest.pool_manager
        session = aiohttp.ClientSession(
            connector=pool.connector, connector_owner=False, read_bufsize=2**21
        )
        return cls(session, options)


def _encode(api: ApiClient, body: Mapping[str, Any]) -> bytes:
    try:
        return api_json.dumps(body)
    except TypeError:  # dates and client models: the client's own sanitising
        return json.dumps(api.sanitize_for_serialization(body)).encode()


class _Gone(Exception):
    """The object is gone (404) while writing its finalizers."""


def _decode(raw: bytes) -> Any:
    try:
        return api_json.loads(raw) if raw else None
    except ValueError:
        return None
