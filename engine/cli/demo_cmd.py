"""`engine demo`: appends and replays a few events in a journal and prints what it did."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from engine.journal import NewEvent, stream_name
from engine.journal.codec import encode_json
from engine.journal.sqlite import SqliteJournal

RESOURCES = (("orders", "uid-7f3a"), ("billing", "uid-91c2"))


def story(name: str, uid: str) -> list[NewEvent]:
    """The events of one resource going from Pending to Ready through one effect."""
    key = f"{uid}:1:CreateDatabase"
    return [
        NewEvent(
            "Observed",
            {
                "event": "ADDED",
                "resourceVersion": "101",
                "generation": 1,
                "spec": {"size": "10Gi", "password": "s3cr3t"},
            },
        ),
        NewEvent(
            "TransitionTaken", {"from": "Pending", "to": "Provisioning", "trigger": "observed_live"}
        ),
        NewEvent(
            "EffectStarted",
            {"key": key, "effect": "CreateDatabase", "attempt": 1},
            idempotency_key=f"{key}:started",
        ),
        NewEvent(
            "EffectSucceeded",
            {"key": key, "effect": "CreateDatabase", "attempt": 1},
            idempotency_key=key,
        ),
        NewEvent(
            "TransitionTaken", {"from": "Provisioning", "to": "Ready", "trigger": "provisioned"}
        ),
    ]


@click.command(name="demo")
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(path_type=Path, readable=False),
    default=None,
    help="Journal file to use (default: a throw-away one in a temporary directory).",
)
def command(journal_path: Path | None) -> None:
    """Append and replay events in a throw-away journal, printing each step."""
    console = Console()
    if journal_path is not None:
        asyncio.run(_demo(journal_path, console))
        return
    with tempfile.TemporaryDirectory(prefix="engine-demo-") as directory:
        asyncio.run(_demo(Path(directory) / "journal.db", console))


async def _demo(path: Path, console: Console) -> None:
    journal = await SqliteJournal.open(path, redact=("spec.password",))
    try:
        console.print(f"[bold]1. opened journal[/] {path} (WAL, synchronous=FULL, 0600)")
        for name, uid in RESOURCES:
            stream = stream_name(
                group="example.com", kind="Database", namespace="default", name=name, uid=uid
            )
            positions = await journal.append(stream, story(name, uid), expected_version=0)
            console.print(
                f"[bold]2. appended[/] {len(positions)} events to {stream} "
                f"at positions {list(positions)}"
            )
        repeat = await journal.append(
            stream, [NewEvent("EffectSucceeded", {}, idempotency_key=f"{uid}:1:CreateDatabase")]
        )
        console.print(
            f"[bold]3. repeated an idempotency key:[/] nothing written, answer {list(repeat)}"
        )
        table = Table(title="4. read back with read_all (every checksum verified)")
        for column in ("pos", "resource", "ver", "type", "checksum"):
            table.add_column(column, no_wrap=True, min_width=len(column))
        table.add_column("data", no_wrap=True, overflow="ellipsis", max_width=40)
        first_observed = ""
        async for record in journal.read_all():
            table.add_row(
                str(record.position),
                record.stream.split("/")[3].split("#")[0],
                str(record.stream_version),
                record.type,
                record.checksum[:12],
                encode_json(record.data),
            )
            if record.type == "Observed" and not first_observed:
                first_observed = encode_json(record.data)
        console.print(table)
        count = await journal.verify()
        console.print(
            f"[bold green]5. chain verified:[/] {count} records, head {journal.head.checksum[:16]}"
        )
        console.print(f"   spec.password was redacted before writing: {first_observed}")
    finally:
        await journal.close()
