"""A real OTLP/HTTP trace receiver for tests: aiohttp on 127.0.0.1, protobuf decoded.

It runs its own event loop on a background thread, so the exporter (a blocking client
on the SDK's export thread) and a test's own event loop never wait on each other.
`response_delay_s` makes it a slow collector; `status` makes it a failing one.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import zlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


@dataclass(frozen=True)
class ReceivedEvent:
    name: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class ReceivedLink:
    trace_id: str
    span_id: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the collector saw it; ids as lowercase hex, "" when absent."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    attributes: dict[str, Any]
    events: tuple[ReceivedEvent, ...]
    links: tuple[ReceivedLink, ...]
    status_code: int
    status_message: str
    resource: dict[str, Any] = field(default_factory=dict)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def _attributes(items: Any) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in items if isinstance(item, KeyValue)}


def decode_spans(body: bytes) -> list[ReceivedSpan]:
    """Every span of one `ExportTraceServiceRequest` body."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        attributes=_attributes(span.attributes),
                        events=tuple(
                            ReceivedEvent(event.name, _attributes(event.attributes))
                            for event in span.events
                        ),
                        links=tuple(
                            ReceivedLink(
                                link.trace_id.hex(),
                                link.span_id.hex(),
                                _attributes(link.attributes),
                            )
                            for link in span.links
                        ),
                        status_code=span.status.code,
                        status_message=span.status.message,
                        resource=resource,
                    )
                )
    return spans


class OtlpReceiver:
    """`with OtlpReceiver() as receiver:` then export to `receiver.base_url`."""

    def __init__(self, *, response_delay_s: float = 0.0, status: int = 200) -> None:
        self.response_delay_s = response_delay_s
        self.status = status
        self.requests = 0
        self._spans: list[ReceivedSpan] = []
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]

    @property
    def base_url(self) -> str:
        """What `OTEL_EXPORTER_OTLP_ENDPOINT` should be set to."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._changed:
            return list(self._spans)

    def wait_for_spans(self, count: int, timeout_s: float = 10.0) -> list[ReceivedSpan]:
        """Block until at least `count` spans arrived; AssertionError after `timeout_s`."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._spans) >= count, timeout_s):
                raise AssertionError(f"expected {count} spans, received {len(self._spans)}")
            return list(self._spans)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        encoding = request.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        if self.response_delay_s:
            await asyncio.sleep(self.response_delay_s)
        with self._changed:
            self.requests += 1
        if self.status != 200:
            return web.Response(status=self.status)
        spans = decode_spans(body)
        with self._changed:
            self._spans.extend(spans)
            self._changed.notify_all()
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._socket.close()
