"""A small file system for storage-fault tests: a tmpfs of a given size mounted for the
test (root with CAP_SYS_ADMIN; the test is skipped where mounting is refused), and a
file that fills it up."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_file_system(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> int:
    """Write `path` until the file system is full; the bytes written."""
    written = 0
    with path.open("wb", buffering=0) as out:
        chunk = b"\0" * 65536
        with contextlib.suppress(OSError):
            while True:
                written += out.write(chunk)
        small = b"\0" * 512
        with contextlib.suppress(OSError):
            while True:
                written += out.write(small)
    return written
