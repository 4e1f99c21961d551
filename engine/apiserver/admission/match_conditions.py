"""A webhook's matchConditions: CEL expressions over `object`, `oldObject` and `request`
(the AdmissionReview's request), evaluated with cel-python as upstream does: the webhook
is skipped when one is false, called when all are true, and an expression that fails
to evaluate (or is not a boolean) is a failure to call it, so failurePolicy decides.

cel-python loads only when a configuration has conditions (its parser takes a second
to build), so a server without them never pays for it."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from engine.apiserver.admission.client import CallFailed

if TYPE_CHECKING:
    import celpy


@functools.cache
def _environment() -> celpy.Environment:
    import celpy  # loaded on first use (see the docstring)

    return celpy.Environment()


@functools.lru_cache(maxsize=1024)
def _program(expression: str) -> celpy.Runner:
    environment = _environment()
    return environment.program(environment.compile(expression))


def compile_problem(expression: str) -> str | None:
    """Why `expression` does not compile, or None."""
    from celpy.celparser import CELParseError

    try:
        _program(expression)
    except CELParseError as bad:
        return " ".join(str(bad).split())
    return None


def conditions_match(
    conditions: Sequence[Mapping[str, Any]],
    *,
    obj: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    request: Mapping[str, Any],
) -> bool:
    """Whether every condition holds; CallFailed when one fails to evaluate (and none is
    false)."""
    from celpy.adapter import json_to_cel
    from celpy.celparser import CELParseError
    from celpy.celtypes import BoolType
    from celpy.evaluation import CELEvalError

    activation = {
        "object": json_to_cel(dict(obj) if obj is not None else None),
        "oldObject": json_to_cel(dict(old) if old is not None else None),
        "request": json_to_cel(dict(request)),
    }
    failures: list[str] = []
    for condition in conditions:
        name = str(condition.get("name", ""))
        try:
            result = _program(str(condition.get("expression", ""))).evaluate(activation)
        except (CELParseError, CELEvalError) as bad:
            failures.append(f"{name}: {' '.join(str(bad).split())}")
            continue
        if not isinstance(result, BoolType):
            failures.append(f"{name}: the expression must evaluate to a bool")
            continue
        if not result:
            return False
    if failures:
        raise CallFailed(f"failed evaluating match conditions: {'; '.join(failures)}")
    return True
