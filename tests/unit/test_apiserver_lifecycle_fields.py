"""The server-set fields of a create: timestamps as strftime writes them (each second
formatted once) and uids that are RFC 4122 version 4 UUIDs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.apiserver.verbs.lifecycle import new_uid, timestamp


@pytest.mark.parametrize(
    "now",
    [
        pytest.param(datetime(2024, 1, 2, 3, 4, 5, 999_999, tzinfo=UTC), id="utc"),
        pytest.param(datetime(2024, 1, 2, 3, 4, 6, tzinfo=UTC), id="the-next-second"),
        pytest.param(datetime(1999, 12, 31, 23, 59, 59), id="naive"),
        pytest.param(
            datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))), id="another-zone"
        ),
    ],
)
def test_a_timestamp_is_what_strftime_writes(now: datetime) -> None:
    assert timestamp(now) == now.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_same_instant_in_two_zones_is_not_given_one_cached_text() -> None:
    utc = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    shifted = utc.astimezone(timezone(timedelta(hours=2)))
    assert utc == shifted
    assert (timestamp(utc), timestamp(shifted)) == ("2024-01-02T03:04:05Z", "2024-01-02T05:04:05Z")


def test_a_uid_is_a_version_4_uuid_in_its_canonical_text() -> None:
    uids = [new_uid() for _ in range(200)]
    assert len(set(uids)) == len(uids)
    for text in uids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text
