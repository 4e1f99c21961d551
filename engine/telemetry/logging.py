"""Log lines as text or JSON, each with the current span's ids, safe from log injection.

Control characters, ANSI escapes, bidi overrides, line separators and lone surrogates in
messages and fields are written as visible escapes (`\\x1b`, `\\u202e`), so one record
is always one line and cannot forge another or repaint a terminal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import sys
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from opentelemetry import trace

LogFormat = Literal["text", "json"]

FIXED_KEYS = ("time", "level", "logger", "message", "trace_id", "span_id")
"""The keys every JSON line has, in this order; extra fields follow."""

_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName", "trace_id", "span_id"}
)
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn"})
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ZERO_WIDTH_JOINER = "\u200d"  # keeps emoji sequences intact; it cannot reorder or hide text


def escape_text(text: str) -> str:
    """`text` with every control, format (bidi, zero-width), separator, private-use,
    unassigned and surrogate character replaced by a visible backslash escape."""
    if text.isascii() and text.isprintable():
        return text
    return _NOT_PRINTABLE_ASCII.sub(_escape_match, text)


def _escape_match(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if char == _ZERO_WIDTH_JOINER or unicodedata.category(char) not in _ESCAPED_CATEGORIES:
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


class _SpanIdsFilter(logging.Filter):
    """Stamps `trace_id`/`span_id` of the current span on each record (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "trace_id", None) is None:
            context = trace.get_current_span().get_span_context()
            valid = context.is_valid
            record.trace_id = trace.format_trace_id(context.trace_id) if valid else None
            record.span_id = trace.format_span_id(context.span_id) if valid else None
        return True


def _time(record: logging.LogRecord) -> str:
    at = datetime.fromtimestamp(record.created, UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRIBUTES}


def _message(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    message = record.getMessage()
    if record.exc_info:
        message = f"{message}\n{formatter.formatException(record.exc_info)}"
    if record.stack_info:
        message = f"{message}\n{formatter.formatStack(record.stack_info)}"
    return escape_text(message)


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {escape_text(str(key)): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_value(item) for item in value]
    return escape_text(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `FIXED_KEYS` first, then the record's extra fields.

    An extra field named like a fixed key is written as `extra.<name>` (never replacing
    the fixed one). Non-JSON values are written as their escaped `str()`.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname,
            "logger": escape_text(record.name),
            "message": _message(self, record),
            "trace_id": getattr(record, "trace_id", None),
            "span_id": getattr(record, "span_id", None),
        }
        for key, value in _extra_fields(record).items():
            name = escape_text(key)
            line[f"extra.{name}" if name in line else name] = _json_value(value)
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger>: <message> key=value ... trace_id=.. span_id=..`."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            _time(record),
            record.levelname,
            f"{escape_text(record.name)}:",
            _message(self, record),
        ]
        for key, value in _extra_fields(record).items():
            parts.append(f"{escape_text(key)}={_text_value(value)}")
        trace_id = getattr(record, "trace_id", None)
        if trace_id is not None:
            parts.append(f"trace_id={trace_id} span_id={getattr(record, 'span_id', None)}")
        return " ".join(parts)


def _text_value(value: Any) -> str:
    text = escape_text(value if isinstance(value, str) else repr(value))
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text


class _EngineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs (so a second call replaces it).

    A stream that cannot be written (a full disk under the log file) is reported once,
    in one line on stderr, instead of a traceback for every record; meanwhile warnings
    and errors go to stderr as plain lines (so that what the engine warns of stays
    visible) and lower records are dropped. The records that met the error are counted,
    and once a record is written again a warning follows it with that count (the
    stream's buffer may still have written some of them). Errors other than `OSError`
    are reported as logging does.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.failed_writes = 0

    def emit(self, record: logging.LogRecord) -> None:
        lost = self.failed_writes
        super().emit(record)
        if lost and self.failed_writes == lost:  # written again after failed writes
            self.failed_writes = 0
            note = logging.LogRecord(
                __name__, logging.WARNING, __file__, 0,
                "%d log records met a write error before the last one; the log may miss them",
                (lost,), None,
            )  # fmt: skip
            super().emit(note)

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)
            return
        lines = []
        if self.failed_writes == 0:
            where = getattr(self.stream, "name", "the log stream")
            reason = error.strerror or str(error)
            lines.append(
                f"engine: log lines cannot be written to {where} ({reason}); warnings go "
                "here meanwhile, the rest may be lost (free space there)"
            )
        if record.levelno >= logging.WARNING and sys.stderr is not self.stream:
            with contextlib.suppress(Exception):
                lines.append(self.format(record))
        self.failed_writes += 1
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write("".join(f"{line}\n" for line in lines))


def configure_logging(
    *, fmt: LogFormat, level: int | str, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record to `stream` (stderr by default) as text or JSON lines.

    Replaces the handler a previous call installed; leaves other handlers alone.
    Returns the installed handler. Errors: `ValueError` for an unknown format or level.
    """
    formatters: dict[str, type[logging.Formatter]] = {"text": TextFormatter, "json": JsonFormatter}
    if fmt not in formatters:
        raise ValueError(f"log format {fmt!r} is not supported: use 'text' or 'json'")
    resolved = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(resolved, int):
        raise ValueError(f"log level {level!r} is unknown: use debug, info, warning or error")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _EngineHandler)]:
        root.removeHandler(old)
    handler = _EngineHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatters[fmt]())
    handler.addFilter(_SpanIdsFilter())
    root.addHandler(handler)
    root.setLevel(resolved)
    return handler
