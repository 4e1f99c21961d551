"""The files of a new operator project (`engine init`): the template under
project_template/ with the project's names filled in, and its config/ rendered by the
same code as `engine manifests`.

Placeholders are `{{name}}` (a Makefile's `$(...)` and Python's braces stay as they are).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from engine import Operator, __version__
from engine.cli.operator_ref import load_operator
from engine.deploy.base import BaseOptions, render_base

TEMPLATE = "project_template"
LAYOUT = {
    "operator.py.tmpl": "{package}/operator.py",
    "conftest.py.tmpl": "tests/conftest.py",
    "test_handlers.py.tmpl": "tests/test_handlers.py",
    "test_operator.py.tmpl": "tests/test_operator.py",
    "Makefile.tmpl": "Makefile",
    "Dockerfile.tmpl": "Dockerfile",
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "sample.yaml.tmpl": "samples/{kind_lower}-hello.yaml",
}
"""Template file → its path in the project."""
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")


@dataclass(frozen=True)
class ProjectNames:
    """The names a project is generated with (checked by `engine init`)."""

    package: str
    group: str
    version: str
    kind: str

    @property
    def values(self) -> dict[str, str]:
        dns = self.package.replace("_", "-")
        return {
            "package": self.package,
            "dns_name": dns,
            "group": self.group,
            "version": self.version,
            "kind": self.kind,
            "kind_lower": self.kind.lower(),
            "plural": f"{self.kind.lower()}s",
            "env_prefix": self.kind.upper(),
            "engine_version": __version__,
        }


def fill(text: str, values: dict[str, str]) -> str:
    """`text` with each `{{name}}` replaced. Errors: `KeyError` for an unknown name."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def _load_new(directory: Path, reference: str) -> Operator:
    """The new project's operator, imported as its package (the directory on the path)."""
    sys.path.insert(0, str(directory))
    try:
        return load_operator(reference)
    finally:
        sys.path.remove(str(directory))


def write_project(directory: Path, names: ProjectNames) -> list[Path]:
    """Write the project into `directory` (which exists and is empty); return its files."""
    values = names.values
    written: list[Path] = []
    template = resources.files("engine.cli").joinpath(TEMPLATE)
    for source, target in LAYOUT.items():
        path = directory / target.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fill(template.joinpath(source).read_text(encoding="utf-8"), values))
        written.append(path)
    package_init = directory / names.package / "__init__.py"
    package_init.write_text(f'"""The {names.kind} operator."""\n')
    written.append(package_init)
    reference = f"{names.package}.operator:OPERATOR"
    operator = _load_new(directory, reference)
    options = BaseOptions(
        operator_ref=reference,
        image=f"{values['dns_name']}:0.1.0",
        namespace=f"{values['dns_name']}-system",
        name=values["dns_name"],
    )
    for relative, text in render_base(operator, options).items():
        path = directory / "config" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
