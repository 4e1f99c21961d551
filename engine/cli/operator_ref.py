"""`--operator REF`: find the operator a command works on and check it before it runs.

REF is `package.module:ATTRIBUTE` (imported with the current directory on sys.path) or
`path/to/file.py:ATTRIBUTE`; the attribute is an `Operator` or a function of no arguments
that returns one. `ENGINE_OPERATOR` gives the default; without it, the example Site.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from engine import Operator
# the operator's modules (the runtime) and the schema check are imported when an operator
# is loaded, not with the option: `engine replay` without --verify needs neither

ENVIRONMENT_VARIABLE = "ENGINE_OPERATOR"
F = TypeVar("F", bound=Callable[..., Any])
EXAMPLE_OPERATOR = "engine.cli.example_operator:site"
"""The example Site operator (the default when neither --operator nor ENGINE_OPERATOR)."""


class OperatorRefError(click.ClickException):
    """A REF that names no usable operator: one line, exit code 2."""

    exit_code = 2


def default_ref(env: Mapping[str, str] | None = None) -> str:
    """The REF used when no --operator is given: `ENGINE_OPERATOR`, else the example."""
    environment = os.environ if env is None else env
    return environment.get(ENVIRONMENT_VARIABLE, "").strip() or EXAMPLE_OPERATOR


def operator_option(help_text: str) -> Callable[[F], F]:
    """The `--operator REF` click option (default from ENGINE_OPERATOR, else the example)."""
    return click.option(
        "--operator",
        "operator_ref",
        default=None,
        metavar="REF",
        help=f"{help_text} REF is module:ATTR or file.py:ATTR [env ENGINE_OPERATOR; "
        "default: the example Site].",
    )


def load_operator(ref: str | None) -> Operator:
    """The checked `Operator` named by `ref` (None: `default_ref()`).

    Errors: `OperatorRefError` naming the module or file that does not import (and what
    was on the path), a missing attribute, a value that is not an Operator, a handler that
    is not async, a schema that is not structural or a kind claimed twice.
    """
    from engine import Operator

    reference = ref if ref else default_ref()
    source, colon, attribute = reference.rpartition(":")
    if not colon or not source or not attribute.isidentifier():
        raise OperatorRefError(
            f"--operator {reference!r} should look like package.module:ATTRIBUTE "
            "or path/to/file.py:ATTRIBUTE"
        )
    module = _import_file(source) if source.endswith(".py") else _import_module(source)
    value = getattr(module, attribute, None)
    if value is None:
        raise OperatorRefError(
            f"--operator {reference!r}: {source} has no attribute {attribute!r}; "
            "name the Operator (or the function returning one)"
        )
    if callable(value) and not isinstance(value, Operator):
        try:
            value = value()
        except TypeError as bad:
            raise OperatorRefError(
                f"--operator {reference!r}: {attribute} must take no arguments ({bad})"
            ) from None
    if not isinstance(value, Operator):
        raise OperatorRefError(
            f"--operator {reference!r} is a {type(value).__name__}, not an Operator; "
            "point it at an engine.Operator or a function returning one"
        )
    check_operator(value, reference)
    return value


def check_operator(operator: Operator, reference: str) -> None:
    """Refuse an operator the engine could not run. Errors: `OperatorRefError`."""
    from engine.apiserver.schema.structural import structural_problems

    for role, handler in (("provision", operator.provision), ("finalize", operator.finalize)):
        if handler is not None and not _is_async(handler):
            raise OperatorRefError(
                f"--operator {reference!r}: the {role} handler {_name(handler)} is not "
                "async; declare it with `async def`"
            )
    for role, admission in (("validate", operator.validate), ("mutate", operator.mutate)):
        if admission is not None and not callable(admission):
            raise OperatorRefError(
                f"--operator {reference!r}: {role} is a {type(admission).__name__}, not a "
                "function of one AdmissionRequest"
            )
    resource = operator.resource
    schemas = [(resource.version, resource.schema)]
    seen = {resource.version}
    for served in resource.served_versions:
        if served.name in seen:
            raise OperatorRefError(
                f"--operator {reference!r}: version {served.name!r} of {resource.kind} is "
                "declared twice; give each served version its own name"
            )
        seen.add(served.name)
        if not (callable(served.to_hub) and callable(served.from_hub)):
            raise OperatorRefError(
                f"--operator {reference!r}: version {served.name!r} of {resource.kind} needs "
                "to_hub and from_hub functions"
            )
        schemas.append((served.name, served.schema))
    for version, schema in schemas:
        problems = structural_problems(schema)
        if problems:
            where = "" if version == resource.version else f" (version {version})"
            raise OperatorRefError(
                f"--operator {reference!r}: the schema of {resource.kind}{where} is not "
                f"structural: {problems[0]}"
            )
    check_distinct_kinds([operator])


def check_distinct_kinds(operators: Iterable[Operator]) -> None:
    """Refuse two operators (or an operator and its own child) claiming one kind."""
    owners: dict[tuple[str, str], str] = {}
    for operator in operators:
        resource = operator.resource
        kind = (resource.group, resource.kind)
        if kind in owners:
            raise OperatorRefError(
                f"two operators claim the kind {resource.kind}.{resource.group}; "
                "give each operator its own kind"
            )
        owners[kind] = resource.kind
        for child in operator.children:
            if (child.group, child.kind) == kind:
                raise OperatorRefError(
                    f"operator of {resource.kind}.{resource.group} also declares it as a "
                    "child kind; remove it from Operator.children"
                )


def _import_module(name: str) -> Any:
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(name)
    except ImportError as bad:
        shown = ", ".join(sys.path[:3])
        raise OperatorRefError(
            f"--operator: cannot import module {name!r} ({bad}); sys.path starts with "
            f"{shown}: run from the project directory or install the package"
        ) from None
    except Exception as bad:  # the user's module raised while importing
        raise OperatorRefError(
            f"--operator: importing {name!r} failed: {type(bad).__name__}: {bad}"
        ) from None


def _import_file(path_text: str) -> Any:
    path = Path(path_text).resolve()
    if not path.is_file():
        raise OperatorRefError(f"--operator: file {path_text} does not exist")
    # A unique module name per file, so two files called operator.py never collide.
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    name = f"engine_operator_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise OperatorRefError(f"--operator: {path_text} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    # Its siblings import as they would when run from its directory; appended, so a file
    # next to it never shadows a module of the standard library or the engine.
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as bad:
        del sys.modules[name]
        raise OperatorRefError(
            f"--operator: importing {path_text} failed: {type(bad).__name__}: {bad}"
        ) from None
    return module


def _is_async(handler: Any) -> bool:
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - an async callable object
    )


def _name(handler: Any) -> str:
    return str(getattr(handler, "__qualname__", None) or type(handler).__name__)
