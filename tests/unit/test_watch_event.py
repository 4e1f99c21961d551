"""Reading watch lines: events, bookmarks, errors, and lines to skip (E8, E10)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.watchers.change import ChangeType
from engine.watchers.event import (
    Bookmark,
    ObjectEvent,
    Skipped,
    StreamError,
    parse_watch_line,
    too_large_status,
)
from engine.watchers.resource import Kind

WIDGETS = Kind("example.dev", "v1", "widgets", "Widget", namespaced=True)


def line(document: Any) -> bytes:
    return json.dumps(document).encode() + b"\n"


def widget(**metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": metadata}


def test_modified_event_becomes_an_object_event_with_its_resource_version() -> None:
    parsed = parse_watch_line(
        line({"type": "MODIFIED", "object": widget(name="a", resourceVersion="9")}), WIDGETS
    )
    assert parsed == ObjectEvent(ChangeType.MODIFIED, widget(name="a", resourceVersion="9"), "9")


def test_missing_api_version_and_kind_are_filled_in() -> None:
    event = {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "1"}}}
    parsed = parse_watch_line(line(event), WIDGETS)
    assert isinstance(parsed, ObjectEvent)
    assert (parsed.obj["apiVersion"], parsed.obj["kind"]) == ("example.dev/v1", "Widget")


def test_bookmark_carries_only_a_resource_version() -> None:
    event = {
        "type": "BOOKMARK",
        "object": {"kind": "Widget", "metadata": {"resourceVersion": "77"}},
    }
    assert parse_watch_line(line(event), WIDGETS) == Bookmark("77")


def test_in_stream_410_becomes_a_stream_error() -> None:
    status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    assert parse_watch_line(line({"type": "ERROR", "object": status}), WIDGETS) == StreamError(
        410, "Expired", "too old"
    )


def test_in_stream_error_keeps_retry_after_seconds_from_details() -> None:
    status = {
        "kind": "Status",
        "code": 429,
        "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": 3},
    }
    parsed = parse_watch_line(line({"type": "ERROR", "object": status}), WIDGETS)
    assert parsed == StreamError(429, "TooManyRequests", "", 3.0)


@pytest.mark.parametrize(
    ("status", "too_large"),
    [
        (
            {
                "message": "Timeout: Too large resource version: 30, current: 16",
                "details": {"causes": [{"reason": "ResourceVersionTooLarge"}]},
            },
            True,
        ),
        ({"message": "Too large resource version: 30, current: 16"}, True),  # an older server
        ({"details": {"causes": [{"reason": "ResourceVersionTooLarge"}]}}, True),
        ({"message": "Timeout: request did not complete within the allowed duration"}, False),
    ],
    ids=["cause", "message-only", "cause-only", "another-timeout"],
)
def test_a_504_says_whether_the_resource_version_is_too_large(
    status: dict[str, Any], too_large: bool
) -> None:
    body = {"kind": "Status", "code": 504, "reason": "Timeout", **status}
    parsed = parse_watch_line(line({"type": "ERROR", "object": body}), WIDGETS)
    assert isinstance(parsed, StreamError)
    assert (parsed.code, parsed.too_large) == (504, too_large)
    assert too_large_status(body) is too_large


def test_bare_status_line_becomes_a_stream_error() -> None:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "code": 500,
        "reason": "InternalError",
        "message": "x",
    }
    assert parse_watch_line(line(status), WIDGETS) == StreamError(500, "InternalError", "x")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        pytest.param(b"{not json\n", "malformed", id="malformed-json"),
        pytest.param(b"[1, 2]\n", "not a JSON object", id="json-array"),
        pytest.param(line({"type": "ADDED"}), "without type or object", id="no-object"),
        pytest.param(
            line({"type": "UPSERTED", "object": widget(name="a", resourceVersion="1")}),
            "unknown watch event type",
            id="unknown-type",
        ),
        pytest.param(
            line(
                {
                    "type": "ADDED",
                    "object": {
                        **widget(name="a", resourceVersion="1"),
                        "apiVersion": "example.dev/v2",
                    },
                }
            ),
            "example.dev/v2",
            id="other-version",
        ),
        pytest.param(
            line(
                {
                    "type": "ADDED",
                    "object": {**widget(name="a", resourceVersion="1"), "kind": "Gadget"},
                }
            ),
            "Gadget",
            id="other-kind",
        ),
        pytest.param(
            line({"type": "ADDED", "object": widget(resourceVersion="1")}),
            "without metadata.name",
            id="no-name",
        ),
        pytest.param(
            line({"type": "ADDED", "object": widget(name="a")}),
            "without metadata.resourceVersion",
            id="no-resource-version",
        ),
        pytest.param(
            line({"type": "BOOKMARK", "object": {"metadata": {}}}),
            "bookmark without",
            id="empty-bookmark",
        ),
        pytest.param(b"[" * 5000 + b"\n", "malformed", id="deeply-nested"),
    ],
)
def test_unusable_lines_are_skipped_with_a_reason(raw: bytes, why: str) -> None:
    parsed = parse_watch_line(raw, WIDGETS)
    assert isinstance(parsed, Skipped)
    assert why in parsed.why
