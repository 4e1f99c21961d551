"""`engine init DIR --group G --version V --kind K`: a new, runnable operator project in
DIR: the operator module, its tests on the engine's test kit, a Dockerfile FROM the
engine's image, config/ from `engine manifests`, and a Makefile (`make run`, `make test`).
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from engine.cli.project_files import ProjectNames, write_project

_GROUP = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")
_VERSION = re.compile(r"^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$")
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]{0,40}$")
_PACKAGE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


class InitInputError(click.ClickException):
    """A bad DIR, group, version or kind: one line, exit code 2."""

    exit_code = 2


def package_name(directory: Path) -> str:
    """The Python package for a project directory: its name, lowercased, '-' → '_'."""
    name = directory.resolve().name.lower().replace("-", "_")
    if not _PACKAGE.match(name):
        raise InitInputError(
            f"directory name {directory.name!r} does not make a Python package name; "
            "use lowercase letters, digits, '-' or '_', starting with a letter"
        )
    return name


@click.command(name="init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--group", required=True, help="API group of the resource, e.g. demo.example.com.")
@click.option("--version", "api_version", required=True, help="API version, e.g. v1alpha1.")
@click.option("--kind", required=True, help="Kind of the resource, e.g. Greeting.")
def command(directory: Path, group: str, api_version: str, kind: str) -> None:
    """Create a new operator project in DIRECTORY (which must be empty or absent)."""
    if not _GROUP.match(group):
        raise InitInputError(
            f"--group {group!r} is not a DNS subdomain with a dot, e.g. demo.example.com"
        )
    if not _VERSION.match(api_version):
        raise InitInputError(f"--version {api_version!r} is not like v1, v1alpha1 or v2beta3")
    if not _KIND.match(kind):
        raise InitInputError(f"--kind {kind!r} must be CamelCase letters and digits, e.g. Greeting")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InitInputError(
            f"{directory} is not empty; choose a new directory (engine init writes a whole project)"
        )
    names = ProjectNames(package=package_name(directory), group=group, version=api_version,
                         kind=kind)  # fmt: skip
    try:
        directory.mkdir(parents=True, exist_ok=True)
        written = write_project(directory, names)
    except OSError as error:
        raise InitInputError(f"cannot write the project into {directory}: {error}") from None
    click.echo(f"created the {kind} operator project in {directory} ({len(written)} files)")
    click.echo(f"next: cd {directory} && make test && make run")
