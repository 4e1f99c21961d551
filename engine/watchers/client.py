"""Connecting to the cluster (kubeconfig or in-cluster) and the two HTTP calls a watcher
makes for any ``group/version/plural``: one LIST page and one WATCH stream.

Both go through kubernetes-asyncio's `ApiClient.call_api` with ``_preload_content=False``
so the status line and headers (Retry-After) are ours to read; `kubernetes_asyncio.watch`
is not used because it hides the headers of a failed watch start and ends the stream on
a JSON line without type/object.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from engine.effects import api_json
from engine.effects.kube_client import (
    ApiClient,
    ConfigException,
    Configuration,
    load_incluster_config,
    load_kube_config,
)
from engine.watchers.event import too_large_status
from engine.watchers.resource import Kind

_AUTH = ["BearerToken"]
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SERVICE_ACCOUNT_DIR_ENV = "ENGINE_SERVICE_ACCOUNT_DIR"
INSECURE_TLS_ENV = "ENGINE_INSECURE_SKIP_TLS_VERIFY"
"""Set to `true` to accept a kubeconfig that turns TLS verification off (a test cluster)."""
_ACCEPT = {"Accept": "application/json"}


class ClusterConfigError(Exception):
    """The kubeconfig or in-cluster configuration cannot be used; the message says what to do."""


class ClusterUnreachableError(Exception):
    """The API server named by the configuration does not answer."""


class TransportError(Exception):
    """The connection failed, timed out or broke mid-response."""


class ApiStatusError(Exception):
    """The API server answered a non-2xx status (a `Status` body).

    `retry_after` is the raw Retry-After header, if any; `too_large` says the Status
    refuses a resourceVersion the server has not reached (`too_large_status`).
    """

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        retry_after: str | None,
        too_large: bool = False,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.too_large = too_large


async def server_answers(client: ApiClient, *, seconds: float) -> None:
    """GET /version once, within `seconds`; return when the API server answered 2xx.

    Errors: whatever the request met (a connection error, a timeout, an `ApiException`)."""
    response = await client.call_api(
        "/version",
        "GET",
        header_params=dict(_ACCEPT),
        auth_settings=_AUTH,
        _preload_content=False,
        _request_timeout=seconds,
    )
    response.release()


async def _probe(client: ApiClient, *, seconds: float, origin: str) -> None:
    url = str(client.configuration.host)
    try:
        response = await client.call_api(
            "/version",
            "GET",
            header_params=dict(_ACCEPT),
            auth_settings=_AUTH,
            _preload_content=False,
            _request_timeout=seconds,
        )
        response.release()
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        await client.close()
        raise ClusterUnreachableError(
            f"cannot reach the Kubernetes API server at {url} (from {origin}): {error}; "
            "check that it is running and that the address is right"
        ) from error


async def connect_kubeconfig(
    path: Path, *, context: str | None = None, probe_timeout: float = 5.0
) -> ApiClient:
    """An `ApiClient` for the cluster in the kubeconfig at `path`, checked to answer.

    Errors: `ClusterConfigError` naming `path` when the file is missing or unusable, or
    when it turns TLS verification off for an https server (`insecure-skip-tls-verify`)
    and $ENGINE_INSECURE_SKIP_TLS_VERIFY is not `true`; `ClusterUnreachableError` naming
    the server URL when it does not answer in `probe_timeout` seconds. The caller closes
    the returned client.
    """
    if not await asyncio.to_thread(path.is_file):
        raise ClusterConfigError(f"kubeconfig {path} does not exist; pass the path of a kubeconfig")
    configuration = Configuration()
    try:
        await load_kube_config(
            config_file=str(path),
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (ConfigException, ValueError, OSError, KeyError, TypeError) as error:
        raise ClusterConfigError(
            f"kubeconfig {path} cannot be used: {error}; fix the file or pass another"
        ) from error
    host = str(configuration.host)
    insecure_allowed = os.environ.get(INSECURE_TLS_ENV, "").strip().lower() == "true"
    if host.startswith("https:") and not configuration.verify_ssl and not insecure_allowed:
        raise ClusterConfigError(
            f"kubeconfig {path} turns TLS verification off (insecure-skip-tls-verify) for "
            f"{host}; give the cluster's CA (certificate-authority-data) instead, or set "
            f"{INSECURE_TLS_ENV}=true for a test cluster"
        )
    client = ApiClient(configuration=configuration)
    await _probe(client, seconds=probe_timeout, origin=f"kubeconfig {path}")
    return client


async def connect_in_cluster(*, probe_timeout: float = 5.0) -> ApiClient:
    """An `ApiClient` from the pod's service account, checked to answer.

    The token and ca.crt are read from $ENGINE_SERVICE_ACCOUNT_DIR, by default the pod's
    /var/run/secrets/kubernetes.io/serviceaccount.
    Errors: `ClusterConfigError` when not running in a pod (no service account or no
    KUBERNETES_SERVICE_HOST); `ClusterUnreachableError` as for `connect_kubeconfig`.
    """
    configuration = Configuration()
    # The pod's token and CA are read from this directory; ENGINE_SERVICE_ACCOUNT_DIR moves
    # it (a simulated pod in tests, or a projected volume mounted elsewhere).
    directory = Path(os.environ.get(SERVICE_ACCOUNT_DIR_ENV) or SERVICE_ACCOUNT_DIR)
    try:
        load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration,
            token_filename=str(directory / "token"),
            cert_filename=str(directory / "ca.crt"),
        )
    except ConfigException as error:
        raise ClusterConfigError(
            f"in-cluster configuration unavailable: {error}; run inside a pod with a "
            "service account, or pass --kubeconfig"
        ) from error
    client = ApiClient(configuration=configuration)
    await _probe(client, seconds=probe_timeout, origin="the in-cluster service account")
    return client


@dataclass(frozen=True)
class ListPage:
    """One page of a LIST: items, the collection's resourceVersion, the continue token."""

    items: list[dict[str, Any]]
    resource_version: str
    continue_token: str


async def _raise_for_status(response: aiohttp.ClientResponse) -> None:
    if 200 <= response.status < 300:
        return
    retry_after = response.headers.get("Retry-After")
    try:
        body = await response.read()
    except (aiohttp.ClientError, TimeoutError):
        body = b""
    finally:
        response.release()
    reason, message = response.reason or "", body.decode("utf-8", errors="replace")[:300]
    too_large = False
    try:
        status = json.loads(body)
        if isinstance(status, dict):
            reason = str(status.get("reason") or reason)
            message = str(status.get("message") or message)
            too_large = too_large_status(status)
    except ValueError:
        pass
    raise ApiStatusError(
        response.status, reason, message, retry_after=retry_after, too_large=too_large
    )


class KubeResources:
    """LIST and WATCH of any kind over one `ApiClient` (which the caller owns and closes)."""

    def __init__(self, client: ApiClient) -> None:
        self._client = client

    async def _get(
        self, path: str, query: list[tuple[str, str]], limits: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        try:
            response: aiohttp.ClientResponse = await self._client.call_api(
                path,
                "GET",
                query_params=query,
                header_params=dict(_ACCEPT),
                auth_settings=_AUTH,
                _preload_content=False,
                _request_timeout=limits,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise TransportError(f"GET {path}: {error or type(error).__name__}") from error
        await _raise_for_status(response)
        return response

    async def _get_json(
        self, path: str, query: list[tuple[str, str]], request_timeout: float
    ) -> Any:
        """The decoded JSON body of a GET of `path`.

        Errors: `ApiStatusError`, `TransportError` (no answer, a body cut short, not JSON).
        """
        response = await self._get(path, query, aiohttp.ClientTimeout(total=request_timeout))
        try:
            return api_json.loads(await response.read())
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TransportError(f"GET {path}: body cut short: {error}") from error
        except (ValueError, RecursionError) as error:
            raise TransportError(f"GET {path}: the answer is not JSON: {error}") from error
        finally:
            response.release()

    async def serves(self, kind: Kind, *, request_timeout: float) -> bool:
        """Whether the API server's discovery document of `kind`'s group version lists
        its resource (False on 404: the group version is not served at all).

        Errors: `ApiStatusError` (other statuses), `TransportError`."""
        base = f"/apis/{kind.group}/{kind.version}" if kind.group else f"/api/{kind.version}"
        try:
            document = await self._get_json(base, [], request_timeout)
        except ApiStatusError as error:
            if error.code == 404:
                return False
            raise
        resources = document.get("resources") if isinstance(document, dict) else None
        if not isinstance(resources, list):
            raise TransportError(f"GET {base}: the answer is not an APIResourceList")
        return any(isinstance(r, dict) and r.get("name") == kind.plural for r in resources)

    async def list_page(
        self,
        kind: Kind,
        *,
        namespace: str | None,
        label_selector: str,
        limit: int,
        continue_token: str,
        request_timeout: float,
    ) -> ListPage:
        """One LIST page of `kind` (in `namespace`, or everywhere when None).

        Errors: `ApiStatusError` (410 when the continue token expired), `TransportError`.
        """
        query = [("limit", str(limit))]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if continue_token:
            query.append(("continue", continue_token))
        path = kind.path(namespace)
        document = await self._get_json(path, query, request_timeout)
        if not isinstance(document, dict) or not isinstance(document.get("items"), list):
            raise TransportError(f"GET {path}: the answer is not a list")
        metadata = document.get("metadata") or {}
        items = [item for item in document["items"] if isinstance(item, dict)]
        for item in items:
            item.setdefault("apiVersion", kind.api_version)
            item.setdefault("kind", kind.kind)
        return ListPage(
            items=items,
            resource_version=str(metadata.get("resourceVersion") or ""),
            continue_token=str(metadata.get("continue") or ""),
        )

    async def open_watch(
        self,
        kind: Kind,
        *,
        namespace: str | None,
        label_selector: str,
        resource_version: str,
        timeout_seconds: int,
        connect_timeout: float,
    ) -> WatchStream:
        """Start a WATCH with bookmarks from `resource_version`; the server ends it after
        `timeout_seconds`. Errors: `ApiStatusError` (e.g. 410, 429 with Retry-After),
        `TransportError`."""
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        if label_selector:
            query.append(("labelSelector", label_selector))
        limits = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_connect=connect_timeout
        )
        path = kind.path(namespace)
        return WatchStream(await self._get(path, query, limits), path)


class WatchStream:
    """An open watch response read line by line; `close` drops the connection.

    Lines are split here from the chunks the connection received, so a line that is
    already received can be taken without waiting (`ready_line`); a line longer than the
    response's read buffer limit is a `TransportError`, as it was for aiohttp's readline.
    """

    def __init__(self, response: aiohttp.ClientResponse, path: str) -> None:
        self._response = response
        self._path = path
        self._held = bytearray()
        self._limit = response.content.get_read_buffer_limits()[1]

    def ready_line(self) -> bytes | None:
        """The next line when it is already received whole, else None (never waits).
        Call it only while no `readline` is pending. Errors: `TransportError`."""
        line = self._take_line()
        if line is not None:
            return line
        try:
            received = self._response.content.read_nowait()
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise TransportError(f"watch {self._path}: {error or type(error).__name__}") from error
        if not received:
            return None
        self._held += received
        return self._take_line()

    async def readline(self) -> bytes:
        """The next line, or b"" at the end of the stream. Errors: `TransportError`."""
        while True:
            line = self._take_line()
            if line is not None:
                return line
            try:
                chunk = await self._response.content.readany()
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                detail = error or type(error).__name__
                raise TransportError(f"watch {self._path}: {detail}") from error
            if not chunk:  # the end: what is left is the last (unterminated) line
                rest = bytes(self._held)
                self._held.clear()
                return rest
            self._held += chunk

    def close(self) -> None:
        """Close the connection (not returned to the pool: the stream may be mid-body)."""
        self._response.close()

    def _take_line(self) -> bytes | None:
        end = self._held.find(b"\n")
        if end == -1:
            if len(self._held) > self._limit:
                raise TransportError(f"watch {self._path}: a line longer than {self._limit} bytes")
            return None
        line = bytes(self._held[: end + 1])
        del self._held[: end + 1]
        return line
