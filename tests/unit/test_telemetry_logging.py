"""Log lines: JSON with fixed keys and span ids, text on one line, injection-safe."""

from __future__ import annotations

import io
import json
import logging
import unicodedata
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

from engine.telemetry import configure_logging, escape_text
from engine.telemetry.logging import FIXED_KEYS

LOG = logging.getLogger("engine.test")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level = root.level
    out = io.StringIO()
    yield out
    for handler in list(root.handlers):
        if type(handler).__name__ == "_EngineHandler":
            root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_json_lines_have_the_fixed_keys_first_and_the_span_ids_inside_a_span(
    stream: io.StringIO,
) -> None:
    configure_logging(fmt="json", level="info", stream=stream)
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("test")
    LOG.info("outside")
    with tracer.start_as_current_span("reconcile") as span:
        LOG.info("inside %s", "a span", extra={"resource": "ns/w", "attempt": 2, "level": "x"})
    outside, inside = (json.loads(line) for line in lines(stream))
    assert list(inside)[: len(FIXED_KEYS)] == list(FIXED_KEYS)
    assert (outside["trace_id"], outside["span_id"]) == (None, None)
    context = span.get_span_context()
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"
    assert inside["message"] == "inside a span"
    assert (inside["level"], inside["logger"]) == ("INFO", "engine.test")
    assert (inside["resource"], inside["attempt"], inside["extra.level"]) == ("ns/w", 2, "x")
    assert inside["time"].endswith("Z")


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        pytest.param("a\nfake line", "a\\nfake line", id="newline"),
        pytest.param("\r\t", "\\r\\t", id="cr-tab"),
        pytest.param("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m", id="ansi"),
        pytest.param("\x00\x7f\x85", "\\x00\\x7f\\x85", id="nul-del-c1"),
        pytest.param("abc\u202edcb", "abc\\u202edcb", id="rtl-override"),
        pytest.param("a\u2066b\u2069", "a\\u2066b\\u2069", id="bidi-isolates"),
        pytest.param("a\u200bb\ufeff", "a\\u200bb\\ufeff", id="zero-width"),
        pytest.param("a\u2028b", "a\\u2028b", id="line-separator"),
        pytest.param("\ud800", "\\ud800", id="lone-surrogate"),
        pytest.param("café 日本 🚀 👩\u200d💻", "café 日本 🚀 👩\u200d💻", id="text-kept"),
    ],
)
def test_escape_text_makes_control_and_bidi_characters_visible(raw: str, escaped: str) -> None:
    assert escape_text(raw) == escaped


def test_text_lines_stay_one_line_per_record_whatever_the_message_and_fields(
    stream: io.StringIO,
) -> None:
    configure_logging(fmt="text", level=logging.INFO, stream=stream)
    try:
        raise ValueError("bad\nINFO forged line")
    except ValueError:
        LOG.exception("name=%s", "w\n2024 INFO forged", extra={"field": "v\x1b[2J"})
    [line] = lines(stream)
    assert "ERROR engine.test: name=w\\n2024 INFO forged" in line
    assert "Traceback" in line
    assert "bad\\nINFO forged line" in line
    assert "field=v\\x1b[2J" in line
    assert "\x1b" not in line


def test_json_lines_escape_fields_and_messages_too(stream: io.StringIO) -> None:
    configure_logging(fmt="json", level="debug", stream=stream)
    LOG.debug("x\u202ey", extra={"k\n": ["\x1b", {"n": float("nan")}]})
    [line] = lines(stream)
    record = json.loads(line)
    assert record["message"] == "x\\u202ey"
    assert record["k\\n"] == ["\\x1b", {"n": "nan"}]


def test_a_second_configuration_replaces_the_first_handler(stream: io.StringIO) -> None:
    first = io.StringIO()
    configure_logging(fmt="text", level="info", stream=first)
    configure_logging(fmt="json", level="info", stream=stream)
    LOG.info("once")
    assert first.getvalue() == ""
    assert len(lines(stream)) == 1


@pytest.mark.parametrize(
    ("fmt", "level", "match"),
    [("xml", "info", "log format"), ("json", "chatty", "log level")],
)
def test_a_bad_format_or_level_is_refused(fmt: str, level: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        configure_logging(fmt=fmt, level=level)  # type: ignore[arg-type]


@given(st.text())
def test_escaped_text_has_no_control_format_or_separator_character(text: str) -> None:
    out = escape_text(text)
    assert all(
        char == "\u200d"
        or unicodedata.category(char) not in {"Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn"}
        for char in out
    )
