"""An operator the project does not ship, as source text: tests write it to a file and
load it by `--operator FILE:OPERATOR`. Its own group and kind (library.test Book), one
child ConfigMap, one idempotent external effect: a file per idempotency key in the
directory named by $BOOK_LEDGER (default ./ledger).

A title of "forbidden" fails permanently; a title of "flaky" fails retryably until the
ledger holds a file named `unflake`.
"""

from __future__ import annotations

from pathlib import Path

from engine import Operator
from engine.cli.operator_ref import load_operator

SOURCE = '''\
"""A Book operator: each Book gets a ConfigMap and a file in a ledger directory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from engine import ChildKind, Context, CustomResource, Operator, PermanentError, RetryableError

BOOK = CustomResource(
    group="library.test",
    version="v1alpha1",
    kind="Book",
    plural="books",
    schema={
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["title"],
                "properties": {
                    "title": {"type": "string", "maxLength": 40},
                    "copies": {"type": "integer", "minimum": 1, "default": 1},
                },
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    },
    printer_columns=(
        {"name": "Title", "type": "string", "jsonPath": ".spec.title"},
        {"name": "State", "type": "string", "jsonPath": ".status.phase"},
    ),
)


def ledger() -> Path:
    return Path(os.environ.get("BOOK_LEDGER", "ledger"))


def record(entry: dict[str, Any], key: str) -> dict[str, Any]:
    """The external effect: one file per idempotency key, written once."""
    ledger().mkdir(parents=True, exist_ok=True)
    target = ledger() / (key.replace(":", "_") + ".json")
    if not target.exists():
        target.write_text(json.dumps(entry))
    return {"file": target.name}


async def provision(ctx: Context) -> None:
    if ctx.spec["title"] == "forbidden":
        raise PermanentError("this title cannot be shelved; choose another title")
    await ctx.apply_child(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{ctx.name}-card"},
            "data": {"title": ctx.spec["title"], "copies": str(ctx.spec["copies"])},
        }
    )

    async def shelve(key: str) -> Any:
        if ctx.spec["title"] == "flaky" and not (ledger() / "unflake").exists():
            raise RetryableError("the shelf is busy", delay=5.0)
        return record({"shelved": ctx.name, "title": ctx.spec["title"]}, key)

    await ctx.effect("shelve", shelve)


async def finalize(ctx: Context) -> None:
    async def unshelve(key: str) -> Any:
        return record({"unshelved": ctx.name}, key)

    await ctx.effect("unshelve", unshelve)


OPERATOR = Operator(
    resource=BOOK,
    provision=provision,
    finalize=finalize,
    children=(ChildKind(group="", version="v1", kind="ConfigMap", plural="configmaps"),),
)
'''


def write_operator(directory: Path) -> Path:
    """Write the operator's module into `directory`; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "book_operator.py"
    path.write_text(SOURCE)
    return path


def book_operator(directory: Path) -> Operator:
    """The operator, loaded from a file written into `directory` (as --operator does)."""
    return load_operator(f"{write_operator(directory)}:OPERATOR")
