"""`engine bench kopf` starts both sides from bytecode: the engine's modules are compiled
before the first round, as kopf's were by pip, and a later start reads them."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from engine.bench.kopf import compile_bytecode


def _package(root: Path) -> Path:
    package = root / "widgets_pkg"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text("SIZE = 1\n")
    (package / "inner" / "__init__.py").write_text("")
    (package / "inner" / "child.py").write_text("NAME = 'w-cm'\n")
    return package


def test_every_module_gets_its_bytecode(tmp_path: Path) -> None:
    package = _package(tmp_path)
    assert compile_bytecode(package)
    for source in package.rglob("*.py"):
        assert Path(importlib.util.cache_from_source(str(source))).is_file(), source


def test_a_start_that_writes_no_bytecode_runs_the_compiled_modules(tmp_path: Path) -> None:
    package = _package(tmp_path)
    child = package / "inner" / "child.py"
    compile_bytecode(package)
    stat = child.stat()
    # same size and mtime, other text: only a start that reads the bytecode sees 'w-cm'
    child.write_text("NAME = 'x-cm'\n")
    os.utime(child, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    probe = "import widgets_pkg.inner.child as c, sys; print(c.NAME, sys.dont_write_bytecode)"
    shown = subprocess.run(
        [sys.executable, "-B", "-c", probe],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert shown == ["w-cm", "True"]


def test_a_changed_module_is_compiled_again(tmp_path: Path) -> None:
    package = _package(tmp_path)
    child = package / "inner" / "child.py"
    compile_bytecode(package)
    cached = Path(importlib.util.cache_from_source(str(child)))
    before = cached.read_bytes()
    mtime = child.stat().st_mtime
    child.write_text("NAME = 'a longer name'\n")
    os.utime(child, (mtime + 10, mtime + 10))  # an edit a while later
    assert compile_bytecode(package)
    assert cached.read_bytes() != before
