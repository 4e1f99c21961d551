"""Validate a custom resource against its CRD schema with jsonschema, Kubernetes-worded.

The OpenAPI v3 schema is rewritten once into plain Draft 4 (`nullable` and
`x-kubernetes-int-or-string` become type unions) and the compiled validator is cached by
the schema's canonical JSON; each jsonschema error becomes a `Cause` in the wording of
the apiextensions-apiserver (kube-openapi messages wrapped in field errors).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import fastjsonschema
from jsonschema import Draft4Validator, ValidationError

from engine.apiserver.schema import cause
from engine.apiserver.schema.cause import Cause
from engine.apiserver.schema.formats import KUBERNETES_FORMATS

# Annotations that mean nothing to a JSON-schema validator (or that we translate ourselves).
_DROPPED_KEYWORDS = frozenset(
    {"nullable", "default", "description", "example", "externalDocs", "title", "$schema"}
)
_INT_OR_STRING = ({"type": "integer"}, {"type": "string"})


def validation_causes(obj: Mapping[str, Any], schema: Mapping[str, Any]) -> list[Cause]:
    """Every schema violation in `obj`, as Kubernetes field causes, in document order.

    Assumes `obj` is already pruned and defaulted. Never raises for a bad `obj`; a schema
    jsonschema cannot compile raises `jsonschema.SchemaError` (structural_problems catches
    those before a CRD is accepted).
    """
    compiled = _validator_of(schema)
    if compiled.accepts(obj):
        return []
    return _causes(compiled.validator.iter_errors(obj))


@dataclass(frozen=True)
class _Compiled:
    """A schema's jsonschema validator (the one that words the causes) and, when the
    schema compiles with it, a fastjsonschema function that only says whether an object
    is valid, several times faster: an object it accepts has no causes; anything else
    is asked of jsonschema."""

    validator: Draft4Validator
    quick: Callable[[Any], Any] | None

    def accepts(self, obj: Any) -> bool:
        if self.quick is None:
            return False
        try:
            self.quick(obj)
        except Exception:  # invalid, or a value it cannot judge: jsonschema decides
            return False
        return True


_BY_IDENTITY: dict[int, tuple[Mapping[str, Any], _Compiled]] = {}
_BY_IDENTITY_LIMIT = 256


def _validator_of(schema: Mapping[str, Any]) -> _Compiled:
    """The compiled validators of `schema`: found by the schema object's identity (a
    CRD's schema is one object from its registration on), else by its canonical JSON.

    The identity entry holds the schema itself, so its id cannot be reused meanwhile.
    """
    found = _BY_IDENTITY.get(id(schema))
    if found is not None and found[0] is schema:
        return found[1]
    compiled = _compiled(json.dumps(schema, sort_keys=True, separators=(",", ":")))
    if len(_BY_IDENTITY) >= _BY_IDENTITY_LIMIT:
        _BY_IDENTITY.clear()
    _BY_IDENTITY[id(schema)] = (schema, compiled)
    return compiled


@lru_cache(maxsize=256)
def _compiled(canonical_schema: str) -> _Compiled:
    # Keyed by the canonical JSON text of the schema: equal schemas share one validator.
    draft4 = to_draft4(json.loads(canonical_schema))
    Draft4Validator.check_schema(draft4)
    validator = Draft4Validator(draft4, format_checker=KUBERNETES_FORMATS)
    return _Compiled(validator=validator, quick=_quick(draft4))


def _quick(draft4: Mapping[str, Any]) -> Callable[[Any], Any] | None:
    """fastjsonschema's validator of `draft4` with the same string formats, or None when
    it cannot compile it or would judge it otherwise (a fractional `multipleOf`, which
    jsonschema checks without tolerance for rounding): that schema is then checked by
    jsonschema alone."""
    if _fractional_multiple(draft4):
        return None
    formats = {
        name: functools.partial(_conforms, name=name) for name in KUBERNETES_FORMATS.checkers
    }
    try:
        quick: Callable[[Any], Any] = fastjsonschema.compile(
            {**draft4, "$schema": "http://json-schema.org/draft-04/schema#"},
            formats=formats,
            use_default=False,
        )
    except Exception:  # a keyword or format it does not know: jsonschema alone
        return None
    return quick


def _fractional_multiple(node: Any) -> bool:
    if isinstance(node, Mapping):
        factor = node.get("multipleOf")
        if isinstance(factor, float) and not factor.is_integer():
            return True
        return any(_fractional_multiple(value) for value in node.values())
    if isinstance(node, list):
        return any(_fractional_multiple(value) for value in node)
    return False


def _conforms(value: Any, *, name: str) -> bool:
    return KUBERNETES_FORMATS.conforms(value, name)


def to_draft4(node: Any) -> Any:
    """Rewrite an OpenAPI v3 (Kubernetes structural) schema into a Draft 4 schema."""
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYWORDS or key.startswith("x-kubernetes-"):
            continue
        if key in ("properties", "patternProperties", "definitions") and isinstance(value, Mapping):
            out[key] = {name: to_draft4(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "additionalItems", "not"):
            out[key] = (
                [to_draft4(s) for s in value] if isinstance(value, list) else to_draft4(value)
            )
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [to_draft4(s) for s in value]
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string") is True:
        out["type"] = ["integer", "string"]
        # The conventional anyOf/allOf spelling of int-or-string is now redundant.
        for junctor in ("anyOf", "allOf"):
            if _is_int_or_string_junctor(out.get(junctor)):
                del out[junctor]
    if node.get("nullable") is True:
        declared = out.get("type")
        if isinstance(declared, str):
            out["type"] = [declared, "null"]
        elif isinstance(declared, list) and "null" not in declared:
            out["type"] = [*declared, "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def _is_int_or_string_junctor(value: Any) -> bool:
    if not isinstance(value, list):
        return False
    if list(value) == list(_INT_OR_STRING):
        return True
    return len(value) == 1 and _is_int_or_string_junctor(
        value[0].get("anyOf") if isinstance(value[0], Mapping) else None
    )


def field_path(parts: Iterable[str | int]) -> str:
    """`("spec", "items", 2, "name")` -> `"spec.items[2].name"`."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def json_type_name(value: Any) -> str:
    """The JSON type of a decoded value, as kube-openapi names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _number(value: Any) -> str:
    # Go prints a float64 limit with %v: 1.0 -> "1".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _causes(errors: Iterable[ValidationError]) -> list[Cause]:
    out: list[Cause] = []
    seen_required: set[tuple[str, str]] = set()
    for error in errors:
        field = field_path(error.absolute_path)
        if error.validator == "required":
            # jsonschema yields one error per missing property; report each exactly once.
            wanted: Any = error.validator_value
            for prop in wanted:
                if isinstance(error.instance, Mapping) and prop not in error.instance:
                    child = f"{field}.{prop}" if field else str(prop)
                    if (child, "required") not in seen_required:
                        seen_required.add((child, "required"))
                        out.append(cause.required(child))
            continue
        out.append(_cause(error, field))
    return out


def _cause(error: ValidationError, field: str) -> Cause:
    name = field or "<root>"
    value: Any = error.instance
    limit: Any = error.validator_value
    node: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    match error.validator:
        case "type":
            types = limit if isinstance(limit, list) else [limit]
            actual = json_type_name(value)
            detail = f'{name} in body must be of type {",".join(types)}: "{actual}"'
            return cause.type_invalid(field, actual, detail)
        case "enum":
            shown = [v if isinstance(v, str) else json.dumps(v) for v in limit]
            return cause.not_supported(field, value, shown)
        case "maxLength":
            return cause.too_long(field, int(limit))
        case "maxItems":
            return cause.too_many(field, len(value), int(limit))
        case "minLength":
            detail = f"{name} in body should be at least {limit} chars long"
        case "minItems":
            detail = f"{name} in body should have at least {limit} items"
        case "minimum":
            strict = node.get("exclusiveMinimum") is True
            relation = "greater than" if strict else "greater than or equal to"
            detail = f"{name} in body should be {relation} {_number(limit)}"
        case "maximum":
            strict = node.get("exclusiveMaximum") is True
            relation = "less than" if strict else "less than or equal to"
            detail = f"{name} in body should be {relation} {_number(limit)}"
        case "multipleOf":
            detail = f"{name} in body should be a multiple of {_number(limit)}"
        case "pattern":
            detail = f"{name} in body should match '{limit}'"
        case "format":
            detail = f"{name} in body must be of type {limit}: {cause.render_value(value)}"
        case "uniqueItems":
            detail = f"{name} in body shouldn't contain duplicates"
        case "minProperties":
            detail = f"{name} in body should have at least {limit} properties"
        case "maxProperties":
            detail = f"{name} in body should have at most {limit} properties"
        case "anyOf":
            detail = f"{name} in body must validate at least one schema (anyOf)"
        case "oneOf":
            detail = f"{name} in body must validate one and only one schema (oneOf)"
        case "not":
            detail = f"{name} in body must not validate the schema (not)"
        case _:
            detail = f"{name} in body: {error.message}"
    return cause.invalid(field, value, detail)
