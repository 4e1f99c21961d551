"""The fast valid/invalid check in front of jsonschema never accepts an object jsonschema
rejects: for every schema and value here, a fast accept implies no causes, and a
rejection still gets jsonschema's causes."""

from __future__ import annotations

from typing import Any

import pytest

from engine.apiserver.schema.validation import _validator_of, validation_causes

PROPERTY_SCHEMAS: list[dict[str, Any]] = [
    {"type": "integer", "minimum": 0, "maximum": 10},
    {"type": "number", "exclusiveMinimum": True, "minimum": 0},
    {"type": "string", "format": "date-time"},
    {"type": "string", "format": "int32"},
    {"type": "string", "format": "email"},
    {"type": "string", "format": "uuid"},
    {"type": "string", "format": "byte"},
    {"type": "string", "format": "not-a-known-format"},
    {"x-kubernetes-int-or-string": True},
    {"type": "string", "nullable": True, "enum": ["x", "y"]},
    {"type": "array", "uniqueItems": True, "items": {}},
    {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "integer"}},
    {"type": "string", "pattern": "^[a-z]+$", "maxLength": 3},
    {"type": "boolean"},
    {"type": "object", "additionalProperties": {"type": "integer"}, "maxProperties": 2},
    {"type": "integer", "multipleOf": 3},
    {"type": "number", "multipleOf": 0.1},
    {"anyOf": [{"type": "integer"}, {"type": "string"}]},
]
VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 3, 6, 11, 2**70, 1.0, 1.5, 0.3, "", "abc", "abcd", "ÄÖ",
    "2024-01-01T00:00:00Z", "2024-13-01T00:00:00Z", "12", "a@b",
    "00000000-0000-4000-8000-000000000000", "aGVsbG8=", [], [1, True], [1, 1], [1, 1.0],
    [0, False], {}, {"k": 1}, {"k": 1, "j": 2, "l": 3}, {"k": "1"},
]  # fmt: skip


@pytest.mark.parametrize("prop", PROPERTY_SCHEMAS, ids=lambda p: ",".join(map(str, p.items())))
def test_a_fast_accept_always_means_no_causes(prop: dict[str, Any]) -> None:
    schema = {"type": "object", "required": ["a"], "properties": {"a": prop}}
    compiled = _validator_of(schema)
    for value in VALUES:
        obj = {"a": value}
        causes = validation_causes(obj, schema)
        if compiled.accepts(obj):
            assert causes == [], (prop, value)
        assert bool(causes) == (not compiled.validator.is_valid(obj)), (prop, value)
    assert not compiled.accepts({})  # the required property is missing
    assert validation_causes({}, schema)


def test_the_fast_check_runs_for_plain_schemas_and_not_for_a_fractional_multiple() -> None:
    plain = {"type": "object", "properties": {"size": {"type": "integer", "minimum": 0}}}
    assert _validator_of(plain).quick is not None
    assert _validator_of(plain).accepts({"size": 1})
    assert not _validator_of(plain).accepts({"size": -1})
    fractional = {"type": "object", "properties": {"x": {"type": "number", "multipleOf": 0.1}}}
    assert _validator_of(fractional).quick is None
