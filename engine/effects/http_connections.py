"""HTTP/1.1 requests to one API server over kept-alive connections, with nothing else.

The engine's writes are small JSON requests and answers, a few per resource; a general
client spends most of its time per request on what they never use (cookies, redirects,
tracing signals, URL objects, per-request timers and payload classes). `Connections`
writes the request line, the headers and the body in one write, reads the status line,
the headers and a `Content-Length`, chunked or until-close body, and keeps the
connection for the next request unless either side said `Connection: close`.

Guarantees: at most `limit` connections at once (callers beyond wait); a request
whose kept connection turns out closed by the server before any byte of the answer is
sent again once, on a new connection (the server did not read it); the whole request,
waiting for a connection included, is bounded by `within` seconds; a connection that
failed or timed out is closed, never reused. Errors: `ConnectionError` (an `OSError`) for a
connection that failed, was cut or answered something that is not HTTP/1.x;
`TimeoutError`; `ValueError` for a header holding a line break (never sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

_READ_LIMIT = 2**21
"""The longest header line accepted (as the watch client's read buffer)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer: status, reason, headers (names lower-cased) and the whole body."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class _ClosedUnanswered(Exception):
    """The server closed the connection before sending any byte of an answer."""


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        self.writer.close()


class Connections:
    """Kept-alive connections to `host`:`port` (TLS with `tls`), sending `authority` as
    the Host header."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        authority: str,
        tls: ssl.SSLContext | None,
        server_hostname: str | None = None,
        limit: int = 100,
    ) -> None:
        self._host = host
        self._port = port
        self._authority = authority
        self._tls = tls
        self._server_hostname = server_hostname
        self._slots = asyncio.Semaphore(max(1, limit))
        self._idle: list[_Connection] = []
        self._closed = False

    async def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        within: float,
    ) -> Answer:
        """Send one request (`target`: path and query) and return its answer, all of it
        within `within` seconds (else `TimeoutError`)."""
        data = self._encode(method, target, headers, body)
        async with asyncio.timeout(within), self._slots:
            if self._closed:
                raise ConnectionError("the connections to the API server are closed")
            connection = self._kept()
            reused = connection is not None
            if connection is None:
                connection = await self._open()
            try:
                try:
                    answer, keep = await _exchange(connection, data, head=method == "HEAD")
                except _ClosedUnanswered:
                    connection.close()
                    if not reused:
                        raise ConnectionError("the API server closed the connection") from None
                    connection = await self._open()
                    answer, keep = await _exchange(connection, data, head=method == "HEAD")
            except _ClosedUnanswered:
                connection.close()
                raise ConnectionError("the API server closed the connection") from None
            except BaseException:
                connection.close()
                raise
            if keep and not self._closed:
                self._idle.append(connection)
            else:
                connection.close()
            return answer

    def _kept(self) -> _Connection | None:
        """The newest kept connection the server has not visibly closed, if any."""
        while self._idle:
            connection = self._idle.pop()
            if not (connection.reader.at_eof() or connection.writer.is_closing()):
                return connection
            connection.close()
        return None

    async def close(self) -> None:
        """Close every kept connection; later requests fail with `ConnectionError`."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        for connection in idle:
            with contextlib.suppress(OSError, ssl.SSLError):  # closing anyway
                await connection.writer.wait_closed()

    async def _open(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(
                self._host,
                self._port,
                ssl=self._tls,
                server_hostname=self._server_hostname if self._tls is not None else None,
                limit=_READ_LIMIT,
            )
        except ssl.SSLError as error:
            raise ConnectionError(f"TLS with the API server failed: {error}") from None
        return _Connection(reader, writer)

    def _encode(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._authority}"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"the header {name!r} holds a line break")
            lines.append(f"{name}: {value}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + body if body else head


async def _exchange(connection: _Connection, data: bytes, *, head: bool) -> tuple[Answer, bool]:
    """Write `data`, read one answer; (the answer, whether the connection may be kept)."""
    try:
        connection.writer.write(data)
        await connection.writer.drain()
        status_line = await connection.reader.readline()
        if not status_line:
            raise _ClosedUnanswered()
        version, status, reason = _status(status_line)
        headers: dict[str, str] = {}
        while True:
            line = await connection.reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise ConnectionError("the API server cut the answer short")
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                raise ConnectionError(f"the API server sent a bad header line {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if head or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _chunked(connection.reader)
        elif "content-length" in headers:
            body = await connection.reader.readexactly(int(headers["content-length"]))
        else:
            body, keep = await connection.reader.read(), False
    except asyncio.IncompleteReadError:
        raise ConnectionError("the API server cut the answer short") from None
    except (asyncio.LimitOverrunError, ValueError) as error:
        raise ConnectionError(f"the API server sent a malformed answer: {error}") from None
    return Answer(status, reason, headers, body), keep


def _status(line: bytes) -> tuple[str, int, str]:
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ConnectionError(f"the API server did not answer HTTP/1.x: {line[:80]!r}")
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";", 1)[0].strip() or b"x", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
