"""Label and field selector grammar and matching."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.apiserver.verbs.selector import (
    FieldSelector,
    LabelSelector,
    Requirement,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "tier": "front", "version": "3", "example.com/team": "core"}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        pytest.param("", True, id="empty-matches-everything"),
        pytest.param("   ", True, id="blank-matches-everything"),
        pytest.param("app=web", True, id="equals"),
        pytest.param("app==web", True, id="double-equals"),
        pytest.param("app=db", False, id="equals-other-value"),
        pytest.param("app!=db", True, id="not-equals"),
        pytest.param("app!=web", False, id="not-equals-same-value"),
        pytest.param("missing!=x", True, id="not-equals-absent-key"),
        pytest.param("app in (db, web)", True, id="in"),
        pytest.param("app in (db,cache)", False, id="in-miss"),
        pytest.param("missing in (x)", False, id="in-absent-key"),
        pytest.param("app notin (db,cache)", True, id="notin"),
        pytest.param("app notin (web)", False, id="notin-miss"),
        pytest.param("missing notin (x)", True, id="notin-absent-key"),
        pytest.param("app", True, id="exists"),
        pytest.param("missing", False, id="exists-absent"),
        pytest.param("!missing", True, id="does-not-exist"),
        pytest.param("!app", False, id="does-not-exist-present"),
        pytest.param("version>2", True, id="greater-than"),
        pytest.param("version<3", False, id="less-than"),
        pytest.param("app>1", False, id="greater-than-non-integer"),
        pytest.param("example.com/team=core", True, id="prefixed-key"),
        pytest.param("app=web,tier=front", True, id="comma-is-and"),
        pytest.param("app=web,tier=back", False, id="comma-is-and-miss"),
        pytest.param("  app = web ,  tier in ( front , back )  ", True, id="whitespace"),
        pytest.param("app=", False, id="empty-value"),
        pytest.param("missing=", False, id="empty-value-absent-key"),
    ],
)
def test_label_selector_matching(text: str, matches: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is matches


def test_empty_value_matches_a_label_with_empty_value() -> None:
    assert parse_label_selector("blank=").matches({"blank": ""})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("a=b=c", "found '='", id="double-operator"),
        pytest.param("a in (b", "found 'end of string', expected: ')'", id="unclosed-paren"),
        pytest.param("a in b", "found 'b', expected: '('", id="in-without-paren"),
        pytest.param("a in (b c)", "found 'c'", id="values-without-comma"),
        pytest.param("a=b,", "expected: a label key", id="trailing-comma"),
        pytest.param(",a", "found ','", id="leading-comma"),
        pytest.param("a b", "found 'b'", id="two-keys"),
        pytest.param("!", "expected: a label key", id="bang-alone"),
        pytest.param("a>b", "an integer", id="gt-non-integer"),
        pytest.param("-a=b", "invalid label key '-a'", id="key-starts-with-dash"),
        pytest.param("a=b_", "invalid label value 'b_'", id="value-ends-with-underscore"),
        pytest.param("x" * 64 + "=1", "no more than 63 characters", id="key-too-long"),
        pytest.param("Bad.Prefix/a=1", "prefix part", id="uppercase-prefix"),
    ],
)
def test_bad_label_selectors_name_the_bad_part(text: str, fragment: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_label_selector(text)
    assert fragment in str(caught.value)


def test_label_selector_canonical_form_sorts_keys_and_values() -> None:
    selector = parse_label_selector("b in (z, y, y), a!=1, !c, d")
    assert str(selector) == "a!=1,b in (y,z),!c,d"
    assert selector.requirements[1] == Requirement("b", "in", ("y", "z"))


POD: dict[str, Any] = {
    "metadata": {"name": "web-1", "namespace": "prod", "labels": {"app": "web"}},
    "spec": {"nodeName": "n1", "replicas": 3, "paused": False},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        pytest.param("", True, id="empty-matches-everything"),
        pytest.param("metadata.name=web-1", True, id="name"),
        pytest.param("metadata.name==web-1", True, id="double-equals"),
        pytest.param("metadata.name=web-2", False, id="name-miss"),
        pytest.param("metadata.namespace=prod,metadata.name=web-1", True, id="and"),
        pytest.param("metadata.namespace!=prod", False, id="not-equals"),
        pytest.param("status.phase!=Pending", True, id="status"),
        pytest.param("spec.nodeName=n1", True, id="spec"),
        pytest.param("spec.replicas=3", True, id="number-as-text"),
        pytest.param("spec.paused=false", True, id="boolean-as-text"),
        pytest.param("spec.missing=", True, id="missing-reads-as-empty"),
        pytest.param("spec.missing!=", False, id="missing-is-not-non-empty"),
        pytest.param("metadata.labels=x", False, id="object-reads-as-empty"),
        pytest.param("metadata.name=web-1, status.phase=Running", True, id="space-after-comma"),
    ],
)
def test_field_selector_matching(text: str, matches: bool) -> None:
    assert parse_field_selector(text).matches(POD) is matches


def test_field_selector_escapes() -> None:
    selector = parse_field_selector(r"metadata.name=a\,b\=c\\d")
    assert selector.matches({"metadata": {"name": "a,b=c\\d"}})
    assert selector.keys == ("metadata.name",)
    assert parse_field_selector(str(selector)) == selector


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("metadata.name", "can't understand", id="no-operator"),
        pytest.param("=x", "no field name", id="no-key"),
        pytest.param(r"metadata.name=a\b", "invalid escape sequence", id="bad-escape"),
        pytest.param("metadata.name=a,", "can't understand", id="trailing-comma"),
    ],
)
def test_bad_field_selectors_name_the_bad_part(text: str, fragment: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_field_selector(text)
    assert fragment in str(caught.value)


def test_empty_selectors_report_empty() -> None:
    assert parse_label_selector("").empty
    assert parse_field_selector("").empty
    assert parse_label_selector("") == LabelSelector()
    assert parse_field_selector(" ") == FieldSelector()


# --- properties -------------------------------------------------------------------------

_NAME = st.from_regex(r"[a-z0-9]([-a-z0-9_.]{0,8}[a-z0-9])?", fullmatch=True)
_KEY = st.one_of(
    _NAME,
    st.builds(lambda p, n: f"{p}.io/{n}", st.from_regex(r"[a-z]{1,5}", fullmatch=True), _NAME),
)
_VALUE = st.one_of(st.just(""), _NAME)


@st.composite
def requirement_texts(draw: st.DrawFn) -> str:
    key = draw(_KEY)
    kind = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!", ">", "<"]))
    if kind in ("in", "notin"):
        values = draw(st.lists(_VALUE, min_size=1, max_size=3))
        return f"{key} {kind} ({', '.join(values)})"
    if kind == "exists":
        return key
    if kind == "!":
        return f"!{key}"
    if kind in (">", "<"):
        return f"{key}{kind}{draw(st.integers(-50, 50))}"
    return f"{key}{kind}{draw(_VALUE)}"


_PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(parts=st.lists(requirement_texts(), max_size=4), spaces=st.sampled_from(["", " ", "  "]))
def test_label_selector_round_trips_through_its_canonical_form(
    parts: list[str], spaces: str
) -> None:
    selector = parse_label_selector((spaces + "," + spaces).join(parts))
    assert parse_label_selector(str(selector)) == selector
    assert len(selector.requirements) == len(parts)


@_PROPERTY
@given(
    key=_KEY,
    values=st.lists(_NAME, min_size=1, max_size=3),
    labels=st.dictionaries(_KEY, _NAME, max_size=3),
)
def test_notin_is_the_negation_of_in(key: str, values: list[str], labels: dict[str, str]) -> None:
    inside = parse_label_selector(f"{key} in ({','.join(values)})")
    outside = parse_label_selector(f"{key} notin ({','.join(values)})")
    assert inside.matches(labels) is not outside.matches(labels)
