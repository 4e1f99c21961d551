"""CRD structural schemas: pruning, defaulting, validation wording, structural checks."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.apiserver.schema.cause import Cause, summarize
from engine.apiserver.schema.custom import (
    admit,
    apply_defaults,
    structural_causes,
    structural_problems,
    validate_name,
)

WIDGET: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "ratio": {"type": "number", "exclusiveMinimum": True, "minimum": 0},
                "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
                "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
                "port": {"x-kubernetes-int-or-string": True},
                "tags": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 2,
                    "items": {"type": "string"},
                },
                "ip": {"type": "string", "format": "ipv4"},
                "when": {"type": "string", "format": "date-time"},
                "note": {"type": "string", "nullable": True},
                "flag": {"type": "boolean", "default": False},
                "limits": {"type": "object", "additionalProperties": {"type": "integer"}},
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "weight": {"type": "integer", "default": 1},
                        },
                    },
                },
                "nested": {
                    "type": "object",
                    "default": {},
                    "properties": {"depth": {"type": "integer", "default": 3}},
                },
                "optional": {
                    "type": "object",
                    "properties": {"inner": {"type": "string", "default": "x"}},
                },
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                },
            },
        },
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
    },
}


def widget(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "labels": {"app": "demo"}},
        "spec": {"size": 3, **spec},
    }


def test_valid_object_is_admitted_with_defaults_and_no_causes() -> None:
    admission = admit(widget(), WIDGET)
    assert admission.causes == ()
    assert admission.unknown_fields == ()
    assert admission.obj["spec"] == {
        "size": 3,
        "mode": "fast",
        "flag": False,
        "nested": {"depth": 3},
    }
    assert admission.obj["metadata"] == {"name": "w1", "labels": {"app": "demo"}}


def test_admit_never_mutates_its_input() -> None:
    original = widget(bogus=1, items=[{"name": "a"}])
    snapshot = copy.deepcopy(original)
    admission = admit(original, WIDGET)
    assert original == snapshot
    admission.obj["spec"]["size"] = 99
    assert original == snapshot


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"size": "three"},
            Cause(
                "FieldValueTypeInvalid",
                "spec.size",
                'Invalid value: "string": spec.size in body must be of type integer: "string"',
            ),
            id="type",
        ),
        pytest.param(
            {"size": True},
            Cause(
                "FieldValueTypeInvalid",
                "spec.size",
                'Invalid value: "boolean": spec.size in body must be of type integer: "boolean"',
            ),
            id="bool-is-not-an-integer",
        ),
        pytest.param(
            {"size": 0},
            Cause(
                "FieldValueInvalid",
                "spec.size",
                "Invalid value: 0: spec.size in body should be greater than or equal to 1",
            ),
            id="minimum",
        ),
        pytest.param(
            {"size": 11},
            Cause(
                "FieldValueInvalid",
                "spec.size",
                "Invalid value: 11: spec.size in body should be less than or equal to 10",
            ),
            id="maximum",
        ),
        pytest.param(
            {"ratio": 0},
            Cause(
                "FieldValueInvalid",
                "spec.ratio",
                "Invalid value: 0: spec.ratio in body should be greater than 0",
            ),
            id="exclusive-minimum",
        ),
        pytest.param(
            {"mode": "turbo"},
            Cause(
                "FieldValueNotSupported",
                "spec.mode",
                'Unsupported value: "turbo": supported values: "fast", "slow"',
            ),
            id="enum",
        ),
        pytest.param(
            {"name": "abcdef"},
            Cause("FieldValueTooLong", "spec.name", "Too long: may not be more than 5 bytes"),
            id="max-length",
        ),
        pytest.param(
            {"name": "a"},
            Cause(
                "FieldValueInvalid",
                "spec.name",
                'Invalid value: "a": spec.name in body should be at least 2 chars long',
            ),
            id="min-length",
        ),
        pytest.param(
            {"name": "AB"},
            Cause(
                "FieldValueInvalid",
                "spec.name",
                "Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'",
            ),
            id="pattern",
        ),
        pytest.param(
            {"tags": ["a", "b", "c"]},
            Cause("FieldValueTooMany", "spec.tags", "Too many: 3: must have at most 2 items"),
            id="max-items",
        ),
        pytest.param(
            {"tags": []},
            Cause(
                "FieldValueInvalid",
                "spec.tags",
                "Invalid value: []: spec.tags in body should have at least 1 items",
            ),
            id="min-items",
        ),
        pytest.param(
            {"ip": "10.0.0"},
            Cause(
                "FieldValueInvalid",
                "spec.ip",
                'Invalid value: "10.0.0": spec.ip in body must be of type ipv4: "10.0.0"',
            ),
            id="format-ipv4",
        ),
        pytest.param(
            {"when": "yesterday"},
            Cause(
                "FieldValueInvalid",
                "spec.when",
                'Invalid value: "yesterday": spec.when in body must be of type date-time: '
                '"yesterday"',
            ),
            id="format-date-time",
        ),
        pytest.param(
            {"port": 1.5},
            Cause(
                "FieldValueTypeInvalid",
                "spec.port",
                'Invalid value: "number": spec.port in body must be of type integer,string: '
                '"number"',
            ),
            id="int-or-string",
        ),
        pytest.param(
            {"items": [{"name": "a"}, {"weight": 2}]},
            Cause("FieldValueRequired", "spec.items[1].name", "Required value"),
            id="required-inside-list-item",
        ),
        pytest.param(
            {"limits": {"cpu": "lots"}},
            Cause(
                "FieldValueTypeInvalid",
                "spec.limits.cpu",
                'Invalid value: "string": spec.limits.cpu in body must be of type integer: '
                '"string"',
            ),
            id="additional-properties-value",
        ),
        pytest.param(
            {"template": {"apiVersion": "v1"}},
            Cause("FieldValueRequired", "spec.template.kind", "Required value: must not be empty"),
            id="embedded-resource-needs-kind",
        ),
        pytest.param(
            {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"}}},
            Cause(
                "FieldValueInvalid",
                "spec.template.metadata.name",
                'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower '
                "case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            ),
            id="embedded-resource-name",
        ),
    ],
)
def test_invalid_value_gets_the_kubernetes_cause(spec: dict[str, Any], expected: Cause) -> None:
    assert admit(widget(**spec), WIDGET).causes == (expected,)


def test_missing_required_field_is_reported_at_the_missing_path() -> None:
    obj = widget()
    del obj["spec"]["size"]
    assert admit(obj, WIDGET).causes == (
        Cause("FieldValueRequired", "spec.size", "Required value"),
    )


def test_every_violation_is_reported_not_just_the_first() -> None:
    causes = admit(widget(size="x", mode="turbo", tags=[1]), WIDGET).causes
    assert {c.field for c in causes} == {"spec.size", "spec.mode", "spec.tags[0]"}
    assert summarize(causes).startswith("[")
    assert "spec.mode: Unsupported value" in summarize(causes)


@pytest.mark.parametrize(
    ("spec", "unknown"),
    [
        pytest.param({"bogus": 1}, ("spec.bogus",), id="unknown-spec-field"),
        pytest.param(
            {"items": [{"name": "a", "colour": "red"}]},
            ("spec.items[0].colour",),
            id="inside-list-item",
        ),
        pytest.param({"free": {"anything": {"goes": 1}}}, (), id="preserve-unknown-fields"),
        pytest.param(
            {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"x": 1}, "y": 2}},
            (),
            id="embedded-resource-keeps-everything",
        ),
        pytest.param({"limits": {"cpu": 2, "mem": 3}}, (), id="additional-properties-keys"),
    ],
)
def test_unknown_fields_are_pruned_and_reported(
    spec: dict[str, Any], unknown: tuple[str, ...]
) -> None:
    admission = admit(widget(**spec), WIDGET)
    assert admission.unknown_fields == unknown
    for path in unknown:
        node: Any = admission.obj
        *parents, leaf = path.replace("[", ".").replace("]", "").split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        assert leaf not in node
    assert admission.causes == ()


def test_root_identity_and_metadata_are_never_pruned() -> None:
    obj = widget()
    obj["metadata"]["annotations"] = {"a": "b"}
    obj["metadata"]["finalizers"] = ["x"]
    obj["extra"] = 1
    admission = admit(obj, WIDGET)
    assert admission.obj["metadata"] == obj["metadata"]
    assert admission.obj["apiVersion"] == "example.com/v1"
    assert admission.obj["kind"] == "Widget"
    assert admission.unknown_fields == ("extra",)


def test_object_without_properties_is_pruned_empty() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object"}}}
    admission = admit({"spec": {"a": 1, "b": {"c": 2}}}, schema)
    assert admission.obj == {"spec": {}}
    assert admission.unknown_fields == ("spec.a", "spec.b")


def test_defaults_apply_only_where_the_parent_exists() -> None:
    admission = admit(widget(), WIDGET)
    assert "optional" not in admission.obj["spec"]
    with_parent = admit(widget(optional={}), WIDGET)
    assert with_parent.obj["spec"]["optional"] == {"inner": "x"}


def test_defaults_fill_list_items_and_nested_defaults() -> None:
    admission = admit(widget(items=[{"name": "a"}, {"name": "b", "weight": 5}]), WIDGET)
    assert admission.obj["spec"]["items"] == [
        {"name": "a", "weight": 1},
        {"name": "b", "weight": 5},
    ]
    assert admission.obj["spec"]["nested"] == {"depth": 3}


@pytest.mark.parametrize(
    ("spec", "expected_spec_subset"),
    [
        pytest.param({"mode": None}, {"mode": "fast"}, id="null-with-default-gets-default"),
        pytest.param({"note": None}, {"note": None}, id="nullable-null-is-kept"),
        pytest.param({"name": None}, {}, id="non-nullable-null-without-default-is-dropped"),
    ],
)
def test_null_handling_follows_kubernetes(
    spec: dict[str, Any], expected_spec_subset: dict[str, Any]
) -> None:
    admission = admit(widget(**spec), WIDGET)
    assert admission.causes == ()
    for key, value in expected_spec_subset.items():
        assert admission.obj["spec"][key] == value
    if not expected_spec_subset:
        assert "name" not in admission.obj["spec"]


def test_defaults_are_pruned_before_validation() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "default": {"known": 1, "stray": 2},
                "properties": {"known": {"type": "integer"}},
            }
        },
    }
    admission = admit({}, schema)
    assert admission.obj == {"spec": {"known": 1}}
    assert admission.unknown_fields == ()


def test_int_or_string_accepts_both_kinds() -> None:
    for port in (8080, "http"):
        assert admit(widget(port=port), WIDGET).causes == ()


def test_nullable_enum_accepts_null() -> None:
    schema = {
        "type": "object",
        "properties": {"mode": {"type": "string", "enum": ["a"], "nullable": True}},
    }
    assert admit({"mode": None}, schema).causes == ()


def test_apply_defaults_fills_without_pruning_or_validating() -> None:
    obj = widget(bogus=1, size="x")
    result = apply_defaults(obj, WIDGET)
    assert result["spec"]["bogus"] == 1
    assert result["spec"]["mode"] == "fast"
    assert "mode" not in obj["spec"]


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        pytest.param("ipv6", "::1", "1.2.3.4", id="ipv6"),
        pytest.param("cidr", "10.0.0.0/8", "10.0.0.0", id="cidr"),
        pytest.param("uuid", "123e4567-e89b-12d3-a456-426614174000", "123", id="uuid"),
        pytest.param("date", "2024-02-29", "2023-02-29", id="date"),
        pytest.param("date-time", "2024-01-01T10:00:00.123456789Z", "2024-01-01", id="date-time"),
        pytest.param("byte", "aGVsbG8=", "not base64!", id="byte"),
        pytest.param("hostname", "a.example.com", "-bad-.com", id="hostname"),
        pytest.param("mac", "00:1a:2b:3c:4d:5e", "00:1a:2b", id="mac"),
        pytest.param("uri", "https://example.com/x", "no scheme", id="uri"),
        pytest.param("duration", "1h30m", "soon", id="duration"),
        pytest.param("email", "a@b.c", "nobody", id="email"),
    ],
)
def test_string_formats_are_checked(fmt: str, good: str, bad: str) -> None:
    schema = {"type": "object", "properties": {"v": {"type": "string", "format": fmt}}}
    assert admit({"v": good}, schema).causes == ()
    (problem,) = admit({"v": bad}, schema).causes
    assert problem.field == "v"
    assert f"must be of type {fmt}" in problem.message


def test_unknown_format_is_ignored() -> None:
    schema = {"type": "object", "properties": {"v": {"type": "string", "format": "password"}}}
    assert admit({"v": "anything"}, schema).causes == ()


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("w1", id="simple"),
        pytest.param("a.b-c.d", id="dotted"),
        pytest.param("a" * 253, id="max-length"),
    ],
)
def test_dns_subdomain_names_are_valid(name: str) -> None:
    assert validate_name(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        pytest.param("Widget", "lowercase RFC 1123 subdomain", id="uppercase"),
        pytest.param("-w", "lowercase RFC 1123 subdomain", id="leading-dash"),
        pytest.param("w_1", "lowercase RFC 1123 subdomain", id="underscore"),
        pytest.param("", "lowercase RFC 1123 subdomain", id="empty"),
        pytest.param("a" * 254, "must be no more than 253 characters", id="too-long"),
    ],
)
def test_bad_names_are_explained(name: str, fragment: str) -> None:
    problem = validate_name(name)
    assert problem is not None
    assert fragment in problem


def test_widget_schema_is_structural() -> None:
    assert structural_problems(WIDGET) == []


def _schema_with(spec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"spec": spec}}


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        pytest.param(
            {"properties": {}},
            "openAPIV3Schema.type: Required value: must not be empty at the root",
            id="root-without-type",
        ),
        pytest.param(
            _schema_with({"properties": {"a": {"type": "string"}}}),
            "openAPIV3Schema.properties[spec].type: Required value: must not be empty for "
            "specified object fields",
            id="field-without-type",
        ),
        pytest.param(
            _schema_with({"type": "array"}),
            "openAPIV3Schema.properties[spec].items: Required value: must be specified",
            id="array-without-items",
        ),
        pytest.param(
            _schema_with({"type": "object", "additionalProperties": False}),
            "openAPIV3Schema.properties[spec].additionalProperties: Forbidden: "
            "additionalProperties cannot be set to false",
            id="additional-properties-false",
        ),
        pytest.param(
            _schema_with({"type": "object", "$ref": "#/definitions/x"}),
            "openAPIV3Schema.properties[spec].$ref: Forbidden: $ref is not supported",
            id="ref",
        ),
        pytest.param(
            _schema_with({"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
            "openAPIV3Schema.properties[spec].uniqueItems: Forbidden: uniqueItems cannot be "
            "set to true since the runtime complexity becomes quadratic",
            id="unique-items",
        ),
        pytest.param(
            _schema_with(
                {
                    "type": "object",
                    "properties": {"a": {"type": "string"}},
                    "anyOf": [{"properties": {"b": {"minLength": 1}}}],
                }
            ),
            "openAPIV3Schema.properties[spec].anyOf[0].properties[b]: Forbidden: must not "
            "specify a field not specified outside of the logical junctor",
            id="junctor-introduces-field",
        ),
        pytest.param(
            _schema_with({"type": "object", "oneOf": [{"type": "object"}]}),
            "openAPIV3Schema.properties[spec].oneOf[0].type: Forbidden: must be empty to be "
            "structural",
            id="junctor-sets-type",
        ),
        pytest.param(
            _schema_with({"type": "string", "x-kubernetes-int-or-string": True}),
            "openAPIV3Schema.properties[spec].type: Forbidden: must be empty if "
            "x-kubernetes-int-or-string is true",
            id="int-or-string-with-type",
        ),
        pytest.param(
            {
                "type": "object",
                "properties": {
                    "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}
                },
            },
            "openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other "
            "than name and generateName, but metadata is implicitly specified",
            id="metadata-beyond-name",
        ),
        pytest.param(
            _schema_with({"type": "integer", "minimum": "one"}),
            "openAPIV3Schema.properties.spec.minimum: Invalid value: 'one' is not of type 'number'",
            id="not-a-json-schema",
        ),
        pytest.param(
            _schema_with({"type": "integer", "default": "three"}),
            'openAPIV3Schema.properties[spec].default: Invalid value: "string": default in '
            'body must be of type integer: "string"',
            id="invalid-default",
        ),
        pytest.param(
            _schema_with(
                {"type": "object", "default": {"b": 1}, "properties": {"a": {"type": "string"}}}
            ),
            'openAPIV3Schema.properties[spec].default: Invalid value: unknown fields "b"',
            id="unpruned-default",
        ),
    ],
)
def test_non_structural_schema_is_explained(schema: dict[str, Any], expected: str) -> None:
    assert expected in structural_problems(schema)


def test_int_or_string_anyof_spelling_is_structural() -> None:
    schema = _schema_with(
        {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    )
    assert structural_problems(schema) == []
    assert admit({"spec": True}, schema).causes[0].field == "spec"


_SCALARS = st.one_of(st.integers(), st.text(max_size=5), st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=st.dictionaries(
        st.sampled_from(["size", "mode", "flag", "junk", "other"]), _SCALARS, max_size=5
    )
)
def test_admission_is_idempotent(spec: dict[str, Any]) -> None:
    first = admit({"spec": spec}, WIDGET)
    second = admit(first.obj, WIDGET)
    assert second.obj == first.obj
    assert second.unknown_fields == ()
    assert second.causes == first.causes


def test_structural_causes_carry_the_crd_field_path_and_reason() -> None:
    schema = _schema_with({"properties": {"a": {"type": "string"}}})
    assert structural_causes(schema, prefix="spec.versions[0].schema.") == [
        Cause(
            "FieldValueRequired",
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].type",
            "Required value: must not be empty for specified object fields",
        )
    ]
