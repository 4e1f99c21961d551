"""Table output: Accept negotiation, columns, cells, ages and the printer-column JSONPath."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.apiserver.verbs.jsonpath import UnsupportedPath, evaluate
from engine.apiserver.verbs.table_output import format_age, render_table, wants_table

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
KUBECTL_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


def stamp(ago: timedelta) -> str:
    return (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def widget(name: str, ago: timedelta, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "resourceVersion": "7",
            "creationTimestamp": stamp(ago),
            "labels": {"app": "demo"},
        },
        **extra,
    }


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        pytest.param(KUBECTL_ACCEPT, True, id="kubectl"),
        pytest.param("application/json;as=Table;v=v1;g=meta.k8s.io", True, id="v1"),
        pytest.param("application/json; as=Table; g=meta.k8s.io; v=v1beta1", True, id="spaces"),
        pytest.param("application/json", False, id="plain-json"),
        pytest.param("", False, id="no-accept"),
        pytest.param("*/*", False, id="anything"),
        pytest.param(
            "application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io",
            False,
            id="discovery",
        ),
        pytest.param("application/json;as=Table;v=v1;g=other.io", False, id="other-group"),
        pytest.param("application/json;as=PartialObjectMetadataList;v=v1", False, id="partial"),
    ],
)
def test_wants_table_reads_the_accept_header(accept: str, expected: bool) -> None:
    assert wants_table(accept) is expected


def test_default_columns_are_name_and_age() -> None:
    table = render_table(
        [widget("a", timedelta(minutes=5)), widget("b", timedelta(seconds=45))],
        columns=[],
        now=NOW,
        resource_version="42",
    )
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42"}
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["columnDefinitions"][0]["format"] == "name"
    assert [row["cells"] for row in table["rows"]] == [["a", "5m"], ["b", "45s"]]


def test_rows_carry_partial_object_metadata() -> None:
    obj = widget("a", timedelta(minutes=1))
    (row,) = render_table([obj], columns=[], now=NOW)["rows"]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }
    row["object"]["metadata"]["labels"]["app"] = "changed"
    assert obj["metadata"]["labels"]["app"] == "demo"


def test_empty_list_still_has_columns() -> None:
    table = render_table([], columns=[], now=NOW)
    assert table["rows"] == []
    assert table["metadata"] == {}
    assert len(table["columnDefinitions"]) == 2


PRINTER_COLUMNS = [
    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "phase"},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "App", "type": "string", "jsonPath": ".metadata.labels.app", "priority": 1},
    {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
    {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
    {"name": "Started", "type": "date", "jsonPath": ".status.startedAt"},
]


def test_printer_columns_render_typed_cells_between_name_and_age() -> None:
    obj = widget(
        "a",
        timedelta(hours=3),
        spec={"size": 3, "ratio": 0.5, "paused": False},
        status={
            "phase": "Running",
            "startedAt": stamp(timedelta(minutes=7, seconds=30)),
            "conditions": [
                {"type": "Synced", "status": "False"},
                {"type": "Ready", "status": "True"},
            ],
        },
    )
    table = render_table([obj], columns=PRINTER_COLUMNS, now=NOW)
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names == ["Name", "Size", "Phase", "Ready", "App", "Ratio", "Paused", "Started", "Age"]
    assert table["columnDefinitions"][2]["description"] == "phase"
    assert table["columnDefinitions"][4]["priority"] == 1
    assert table["rows"][0]["cells"] == [
        "a",
        3,
        "Running",
        "True",
        "demo",
        0.5,
        False,
        "7m30s",
        "3h",
    ]


def test_missing_values_give_null_cells_and_wrong_types_do_not_raise() -> None:
    obj = widget("a", timedelta(days=2), spec={"size": "big", "paused": "no"})
    cells = render_table([obj], columns=PRINTER_COLUMNS, now=NOW)["rows"][0]["cells"]
    assert cells == ["a", None, None, None, "demo", None, None, None, "2d"]


def test_unsupported_jsonpath_renders_empty_string() -> None:
    columns = [{"name": "Odd", "type": "string", "jsonPath": ".spec.items[0:2]"}]
    cells = render_table(
        [widget("a", timedelta(0), spec={"items": [1, 2]})], columns=columns, now=NOW
    )["rows"][0]["cells"]
    assert cells == ["a", "", "0s"]


def test_creation_timestamp_column_replaces_the_default_age() -> None:
    columns = [{"name": "Created", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    table = render_table([widget("a", timedelta(minutes=30))], columns=columns, now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created"]
    assert table["rows"][0]["cells"] == ["a", "30m"]


def test_objects_without_timestamps_show_unknown_age() -> None:
    table = render_table([{"metadata": {"name": "x"}}, {}], columns=[], now=NOW)
    assert [row["cells"] for row in table["rows"]] == [["x", "<unknown>"], ["", "<unknown>"]]


def test_string_columns_show_structured_values_as_json() -> None:
    columns = [{"name": "Spec", "type": "string", "jsonPath": ".spec"}]
    obj = widget("a", timedelta(0), spec={"b": [1], "a": True})
    assert render_table([obj], columns=columns, now=NOW)["rows"][0]["cells"][1] == (
        '{"a":true,"b":[1]}'
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(-5, "<invalid>", id="future"),
        pytest.param(-1.5, "0s", id="slightly-future"),
        pytest.param(0, "0s", id="now"),
        pytest.param(45, "45s", id="seconds"),
        pytest.param(119.9, "119s", id="under-two-minutes"),
        pytest.param(120, "2m", id="two-minutes"),
        pytest.param(5 * 60 + 30, "5m30s", id="minutes-and-seconds"),
        pytest.param(9 * 60 + 59, "9m59s", id="just-under-ten-minutes"),
        pytest.param(10 * 60 + 30, "10m", id="ten-minutes-drop-seconds"),
        pytest.param(179 * 60, "179m", id="under-three-hours-in-minutes"),
        pytest.param(3 * 3600, "3h", id="three-hours"),
        pytest.param(3 * 3600 + 25 * 60, "3h25m", id="hours-and-minutes"),
        pytest.param(8 * 3600 + 25 * 60, "8h", id="eight-hours-drop-minutes"),
        pytest.param(47 * 3600, "47h", id="under-two-days"),
        pytest.param(2 * 86400, "2d", id="two-days"),
        pytest.param(3 * 86400 + 5 * 3600, "3d5h", id="days-and-hours"),
        pytest.param(8 * 86400 + 5 * 3600, "8d", id="eight-days"),
        pytest.param(400 * 86400, "400d", id="over-a-year-in-days"),
        pytest.param(730 * 86400, "2y", id="two-years"),
        pytest.param(800 * 86400, "2y70d", id="years-and-days"),
        pytest.param(9 * 365 * 86400, "9y", id="many-years"),
    ],
)
def test_format_age_matches_human_duration(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


@given(st.floats(min_value=0, max_value=20 * 365 * 86400, allow_nan=False))
def test_format_age_never_shows_more_than_two_units(seconds: float) -> None:
    text = format_age(seconds)
    units = [c for c in text if c.isalpha()]
    assert 1 <= len(units) <= 2
    assert text[0].isdigit()


DOC: dict[str, Any] = {
    "metadata": {"labels": {"app.kubernetes.io/name": "w", "plain": "p"}},
    "spec": {"items": [{"name": "a", "n": 1, "on": True}, {"name": "b", "n": 2, "on": False}]},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        pytest.param(".metadata.labels.plain", ["p"], id="dotted"),
        pytest.param("{.metadata.labels.plain}", ["p"], id="braces"),
        pytest.param("$.metadata.labels.plain", ["p"], id="dollar"),
        pytest.param(".metadata.labels['app.kubernetes.io/name']", ["w"], id="quoted-key"),
        pytest.param('.metadata.labels["app.kubernetes.io/name"]', ["w"], id="double-quoted"),
        pytest.param(".spec.items[1].name", ["b"], id="index"),
        pytest.param(".spec.items[-1].name", ["b"], id="negative-index"),
        pytest.param(".spec.items[5].name", [], id="index-out-of-range"),
        pytest.param(".spec.items[*].name", ["a", "b"], id="wildcard"),
        pytest.param(".spec.items.*.n", [1, 2], id="dot-wildcard"),
        pytest.param('.spec.items[?(@.name=="b")].n', [2], id="filter-string"),
        pytest.param(".spec.items[?(@.name != 'b')].n", [1], id="filter-not-equal"),
        pytest.param(".spec.items[?(@.n==2)].name", ["b"], id="filter-number"),
        pytest.param(".spec.items[?(@.on==true)].name", ["a"], id="filter-boolean"),
        pytest.param(".spec.items[?(@.name)].n", [1, 2], id="filter-exists"),
        pytest.param(".spec.missing.deeper", [], id="missing"),
        pytest.param(".metadata.labels.plain.deeper", [], id="through-a-string"),
    ],
)
def test_jsonpath_subset(expression: str, expected: list[Any]) -> None:
    assert evaluate(expression, DOC) == expected


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("", id="empty"),
        pytest.param("spec.items", id="no-leading-dot"),
        pytest.param(".spec.items[0:1]", id="slice"),
        pytest.param(".spec..name", id="recursive-descent"),
        pytest.param(".spec.items[?(@.n > 1)]", id="comparison-filter"),
    ],
)
def test_jsonpath_outside_the_subset_is_refused(expression: str) -> None:
    with pytest.raises(UnsupportedPath):
        evaluate(expression, DOC)
