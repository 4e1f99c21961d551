"""Why a CRD's openAPIV3Schema is not a Kubernetes structural schema.

Checks the rules of the apiextensions-apiserver: a non-empty `type` on every specified
field, nothing but value validations inside allOf/anyOf/oneOf/not (and only for fields
also specified outside them), no `$ref`/`additionalProperties: false`/`uniqueItems`,
`metadata` restricted to name and generateName, and defaults that are pruned and valid.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft4Validator, SchemaError

from engine.apiserver.schema.cause import Cause
from engine.apiserver.schema.pruning import Path, fill_defaults, prune_unknown
from engine.apiserver.schema.validation import field_path, to_draft4, validation_causes

_TYPES = ("array", "boolean", "integer", "number", "object", "string")
_FORBIDDEN = ("$ref", "$schema", "id", "definitions", "dependencies", "additionalItems",
              "patternProperties")  # fmt: skip
_JUNCTORS = ("allOf", "anyOf", "oneOf")
_NOT_IN_JUNCTOR = ("type", "default", "additionalProperties", "nullable", "description",
                   "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
                   "x-kubernetes-int-or-string")  # fmt: skip
_METADATA_NAMES = frozenset({"name", "generateName"})
_REASONS = (
    ("Required value", "FieldValueRequired"),
    ("Forbidden", "FieldValueForbidden"),
    ("Unsupported value", "FieldValueNotSupported"),
)


def structural_problems(schema: Mapping[str, Any]) -> list[str]:
    """Every reason `schema` is not structural, worded like Kubernetes; [] when it is.

    Each entry is `<path>: <problem>`, the path starting at `openAPIV3Schema` (prefix it
    with `spec.versions[i].schema.` for the CRD's own 422 Invalid). Never raises.
    """
    problems: list[str] = []
    where = "openAPIV3Schema"
    declared = schema.get("type")
    if not declared:
        problems.append(f"{where}.type: Required value: must not be empty at the root")
    elif declared != "object":
        problems.append(f'{where}.type: Invalid value: "{declared}": must be object at the root')
    _check_node(schema, where, problems)
    _check_metadata(schema, where, problems)
    if not problems:
        problems.extend(_compile_problems(schema, where))
    if not problems:
        _check_defaults(schema, where, problems)
    return problems


def structural_causes(schema: Mapping[str, Any], *, prefix: str = "") -> list[Cause]:
    """`structural_problems` as Status causes, each field prefixed with `prefix`.

    For a CRD, `prefix="spec.versions[0].schema."` gives fields like
    `spec.versions[0].schema.openAPIV3Schema.properties[spec].type`.
    """
    causes = []
    for problem in structural_problems(schema):
        path, _, message = problem.partition(": ")
        reason = next((r for head, r in _REASONS if message.startswith(head)), "FieldValueInvalid")
        causes.append(Cause(reason, prefix + path, message))
    return causes


def _check_node(node: Mapping[str, Any], where: str, problems: list[str]) -> None:
    for key in _FORBIDDEN:
        if key in node:
            problems.append(f"{where}.{key}: Forbidden: {key} is not supported")
    if node.get("uniqueItems") is True:
        problems.append(
            f"{where}.uniqueItems: Forbidden: uniqueItems cannot be set to true since the "
            "runtime complexity becomes quadratic"
        )
    extra = node.get("additionalProperties")
    if extra is False:
        problems.append(
            f"{where}.additionalProperties: Forbidden: additionalProperties cannot be set to false"
        )
    if "properties" in node and extra is not None:
        problems.append(
            f"{where}.additionalProperties: Forbidden: additionalProperties and properties "
            "are mutual exclusive"
        )
    _check_flags(node, where, problems)
    _check_children(node, where, problems)
    for junctor in _JUNCTORS:
        for index, branch in enumerate(node.get(junctor) or ()):
            _check_value_validation(node, branch, f"{where}.{junctor}[{index}]", problems)
    if isinstance(node.get("not"), Mapping):
        _check_value_validation(node, node["not"], f"{where}.not", problems)


def _check_flags(node: Mapping[str, Any], where: str, problems: list[str]) -> None:
    declared = node.get("type")
    if node.get("x-kubernetes-int-or-string") is True and declared:
        problems.append(
            f"{where}.type: Forbidden: must be empty if x-kubernetes-int-or-string is true"
        )
    if node.get("x-kubernetes-embedded-resource") is True:
        if declared != "object":
            problems.append(
                f"{where}.type: Invalid value: {_quoted(declared)}: must be object if "
                "x-kubernetes-embedded-resource is true"
            )
        if (
            not node.get("properties")
            and node.get("x-kubernetes-preserve-unknown-fields") is not True
        ):
            problems.append(
                f"{where}.properties: Required value: must not be empty if "
                "x-kubernetes-embedded-resource is true without "
                "x-kubernetes-preserve-unknown-fields"
            )
    if declared and declared not in _TYPES:
        supported = ", ".join(f'"{t}"' for t in _TYPES)
        problems.append(
            f"{where}.type: Unsupported value: {_quoted(declared)}: supported values: {supported}"
        )
    if declared == "array" and "items" not in node:
        problems.append(f"{where}.items: Required value: must be specified")


def _check_children(node: Mapping[str, Any], where: str, problems: list[str]) -> None:
    children: list[tuple[str, Any, str]] = []
    props = node.get("properties")
    if isinstance(props, Mapping):
        children.extend(
            (f"{where}.properties[{name}]", sub, "object fields") for name, sub in props.items()
        )
    if isinstance(node.get("additionalProperties"), Mapping):
        children.append(
            (f"{where}.additionalProperties", node["additionalProperties"], "object fields")
        )
    items = node.get("items")
    if isinstance(items, list):
        problems.append(f"{where}.items: Forbidden: items must be a schema object and not an array")
    elif isinstance(items, Mapping):
        children.append((f"{where}.items", items, "array items"))
    for path, sub, what in children:
        if not isinstance(sub, Mapping):
            problems.append(f"{path}: Invalid value: must be a schema object")
            continue
        untyped_allowed = (
            sub.get("x-kubernetes-int-or-string") is True
            or sub.get("x-kubernetes-preserve-unknown-fields") is True
        )
        if not sub.get("type") and not untyped_allowed:
            problems.append(f"{path}.type: Required value: must not be empty for specified {what}")
        _check_node(sub, path, problems)


def _check_value_validation(
    outer: Mapping[str, Any], branch: Any, where: str, problems: list[str]
) -> None:
    """Inside a logical junctor only value validations of fields specified outside."""
    if not isinstance(branch, Mapping):
        problems.append(f"{where}: Invalid value: must be a schema object")
        return
    int_or_string = outer.get("x-kubernetes-int-or-string") is True
    for key in _NOT_IN_JUNCTOR:
        if key in branch and not (int_or_string and key == "type"):
            problems.append(f"{where}.{key}: Forbidden: must be empty to be structural")
    found = outer.get("properties")
    outer_props: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    for name, sub in (branch.get("properties") or {}).items():
        path = f"{where}.properties[{name}]"
        if name not in outer_props:
            problems.append(
                f"{path}: Forbidden: must not specify a field not specified outside of "
                "the logical junctor"
            )
        elif isinstance(sub, Mapping):
            _check_value_validation(outer_props[name], sub, path, problems)
    if isinstance(branch.get("items"), Mapping):
        if not isinstance(outer.get("items"), Mapping):
            problems.append(
                f"{where}.items: Forbidden: must not specify items not specified outside of "
                "the logical junctor"
            )
        else:
            _check_value_validation(outer["items"], branch["items"], f"{where}.items", problems)
    for junctor in _JUNCTORS:
        for index, nested in enumerate(branch.get(junctor) or ()):
            _check_value_validation(outer, nested, f"{where}.{junctor}[{index}]", problems)


def _check_metadata(schema: Mapping[str, Any], where: str, problems: list[str]) -> None:
    props = schema.get("properties")
    metadata = props.get("metadata") if isinstance(props, Mapping) else None
    if not isinstance(metadata, Mapping):
        return
    path = f"{where}.properties[metadata]"
    extra_keys = set(metadata) - {"type", "properties", "description"}
    names = metadata.get("properties") or {}
    if extra_keys or not set(names) <= _METADATA_NAMES:
        problems.append(
            f"{path}: Forbidden: must not specify anything other than name and generateName, "
            "but metadata is implicitly specified"
        )
    if metadata.get("type") not in (None, "object"):
        problems.append(f"{path}.type: Invalid value: {_quoted(metadata['type'])}: must be object")


def _compile_problems(schema: Mapping[str, Any], where: str) -> list[str]:
    try:
        Draft4Validator.check_schema(to_draft4(schema))
    except SchemaError as error:
        path = ".".join(str(p) for p in error.absolute_path)
        return [f"{where}{'.' + path if path else ''}: Invalid value: {error.message}"]
    return []


def _check_defaults(node: Mapping[str, Any], where: str, problems: list[str]) -> None:
    """Defaults must survive pruning unchanged and validate against their own schema."""
    if "default" in node:
        value = copy.deepcopy(node["default"])
        unknown: list[Path] = []
        prune_unknown(value, node, (), unknown)
        if unknown:
            listed = ", ".join(f'"{field_path(p)}"' for p in unknown)
            problems.append(f"{where}.default: Invalid value: unknown fields {listed}")
        fill_defaults(value, node)
        for cause in validation_causes({"default": value}, {"properties": {"default": node}}):
            problems.append(f"{where}.{cause}")
    props = node.get("properties")
    if isinstance(props, Mapping):
        for name, sub in props.items():
            if isinstance(sub, Mapping) and name != "metadata":
                _check_defaults(sub, f"{where}.properties[{name}]", problems)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), Mapping):
            _check_defaults(node[key], f"{where}.{key}", problems)


def _quoted(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)
