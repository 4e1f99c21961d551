"""Field-level validation errors worded the way the Kubernetes API server words them.

A `Cause` is one entry of a Status' `details.causes`; the constructors below reproduce
`k8s.io/apimachinery/pkg/util/validation/field` (`Required`, `Invalid`, `NotSupported`, …).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cause:
    """One entry of `Status.details.causes`.

    `reason` is the machine-readable cause type (`FieldValueRequired`, `FieldValueInvalid`,
    …), `field` the dotted path as Kubernetes prints it (`spec.items[2].name`) and
    `message` the error body without the field (`Required value`).
    """

    reason: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def render_value(value: Any) -> str:
    """Render a bad value as Go's field.Error does: strings quoted, numbers bare, else JSON."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return "null"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _with_detail(head: str, detail: str) -> str:
    return f"{head}: {detail}" if detail else head


def required(field: str, detail: str = "") -> Cause:
    """`field.Required`: the field is missing."""
    return Cause("FieldValueRequired", field, _with_detail("Required value", detail))


def invalid(field: str, value: Any, detail: str) -> Cause:
    """`field.Invalid`: the value is malformed."""
    return Cause(
        "FieldValueInvalid", field, _with_detail(f"Invalid value: {render_value(value)}", detail)
    )


def type_invalid(field: str, value: Any, detail: str) -> Cause:
    """`field.TypeInvalid`: the value has the wrong JSON type."""
    return Cause(
        "FieldValueTypeInvalid",
        field,
        _with_detail(f"Invalid value: {render_value(value)}", detail),
    )


def not_supported(field: str, value: Any, supported: Sequence[str]) -> Cause:
    """`field.NotSupported`: the value is not one of an enumerated set."""
    detail = "supported values: " + ", ".join(json.dumps(s) for s in supported)
    return Cause(
        "FieldValueNotSupported",
        field,
        f"Unsupported value: {render_value(value)}: {detail}",
    )


def too_long(field: str, max_length: int) -> Cause:
    """`field.TooLong`: a string longer than allowed (the value itself is not echoed)."""
    return Cause("FieldValueTooLong", field, f"Too long: may not be more than {max_length} bytes")


def too_many(field: str, actual: int, max_items: int) -> Cause:
    """`field.TooMany`: a list with more items than allowed."""
    return Cause(
        "FieldValueTooMany", field, f"Too many: {actual}: must have at most {max_items} items"
    )


def summarize(causes: Sequence[Cause]) -> str:
    """The aggregate text Kubernetes puts after `<Kind> "<name>" is invalid: `.

    One cause prints as `field: message`; several as `[a: m1, b: m2]` (utilerrors.Aggregate).
    """
    texts = [str(c) for c in causes]
    if len(texts) == 1:
        return texts[0]
    return "[" + ", ".join(texts) + "]"
