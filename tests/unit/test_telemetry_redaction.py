"""Secrets found at the configured paths never survive redaction; names are allowlisted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.telemetry import REDACTED, Redactor, UnknownSpanAttribute

# No "<" or ">" so a secret cannot straddle the marker; the marker itself is masked below.
SAFE_TEXT = st.text(st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)))


def test_secrets_are_found_at_any_depth_and_inside_lists() -> None:
    obj = {
        "spec": {"password": "p1", "size": 3},
        "object": {"spec": {"password": "p2"}},
        "items": [{"spec": {"password": "p3"}}, {"spec": {"other": "x"}}],
        "status": {"password": "not-a-path-match"},
    }
    redactor = Redactor.from_object(obj, ["spec.password"])
    assert set(redactor.secrets) == {"p1", "p2", "p3"}


def test_structured_and_numeric_secret_values_are_collected_as_text() -> None:
    obj = {"spec": {"auth": {"user": "admin", "pin": 1234, "enabled": True}}}
    redactor = Redactor.from_object(obj, ["spec.auth"])
    assert set(redactor.secrets) == {"admin", "1234"}


def test_a_longer_secret_is_replaced_whole_before_a_shorter_one_inside_it() -> None:
    redactor = Redactor.from_object({"a": {"s": "b"}, "c": {"s": "abcd"}}, ["a.s", "c.s"])
    assert redactor.text("x abcd y b") == f"x {REDACTED} y {REDACTED}"


def test_attribute_values_of_every_type_are_redacted() -> None:
    redactor = Redactor.from_object({"spec": {"key": "k9"}}, ["spec.key"])
    assert redactor.attributes({"effect.name": "use k9", "effect.attempt": 9}) == {
        "effect.name": f"use {REDACTED}",
        "effect.attempt": 9,
    }
    assert redactor.value(["k9", "ok"]) == (REDACTED, "ok")


def test_an_attribute_name_off_the_allowlist_is_refused_with_what_to_do() -> None:
    with pytest.raises(UnknownSpanAttribute, match="ALLOWED_ATTRIBUTES"):
        Redactor().attributes({"spec.password": "x"})


@given(secret=SAFE_TEXT.filter(bool), before=SAFE_TEXT, after=SAFE_TEXT, other=SAFE_TEXT)
def test_no_redacted_text_contains_a_secret(
    secret: str, before: str, after: str, other: str
) -> None:
    redactor = Redactor.from_object(
        {"spec": {"token": secret}, "x": {"token": other}}, ["spec.token", "x.token"]
    )
    out = redactor.text(before + secret + after + secret)
    assert secret not in out.replace(REDACTED, "<>")
