"""The kubernetes-asyncio names the engine uses, without loading its generated client.

`import kubernetes_asyncio.client` runs a package `__init__` that imports every API
class and every model class the generator wrote (about 800 modules, over half of the
engine's start-up imports), although the engine only calls `ApiClient.call_api` with
raw JSON. Before anything imports the package, `_install` puts light packages in the
place of `kubernetes_asyncio`, `kubernetes_asyncio.client`, `.client.api` and
`.client.models`: the same directories and names, each name imported from the same file
on first use (the map is read from the package's own `__init__` text). A process that
imported the package fully before keeps it as it is.

Every module of the engine that needs kubernetes-asyncio imports it through this one.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any

_ROOT = "kubernetes_asyncio"
_FROM = re.compile(r"^from (kubernetes_asyncio[\w.]*) import (\w+)\s*$", re.MULTILINE)
_AS = re.compile(r"^import (kubernetes_asyncio\.\w+) as (\w+)\s*$", re.MULTILINE)


def _lazy_package(name: str, directory: Path) -> types.ModuleType:
    """A package module for `name` over `directory` whose names load on first use."""
    init = directory / "__init__.py"
    text = init.read_text(encoding="utf-8")
    homes = {attr: home for home, attr in _FROM.findall(text)}
    modules = {attr: home for home, attr in _AS.findall(text)}
    module = types.ModuleType(name)
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [str(directory)]
    module.__spec__ = spec
    module.__path__ = [str(directory)]
    module.__file__ = str(init)
    module.__package__ = name
    version = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if version is not None:
        module.__dict__["__version__"] = version.group(1)

    def __getattr__(attr: str) -> Any:
        value: Any
        if attr in homes:
            value = getattr(importlib.import_module(homes[attr]), attr)
        elif attr in modules:
            value = importlib.import_module(modules[attr])
        elif attr.startswith("__"):
            raise AttributeError(attr)
        else:
            try:
                value = importlib.import_module(f"{name}.{attr}")  # a submodule
            except ModuleNotFoundError:
                raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None
        setattr(module, attr, value)
        return value

    module.__dict__["__getattr__"] = __getattr__
    return module


def _install() -> None:
    if _ROOT in sys.modules:
        return  # imported already (fully, or by an earlier call): leave it
    found = importlib.util.find_spec(_ROOT)
    if found is None or not found.submodule_search_locations:
        return  # not installed: the imports below fail with the usual error
    root = Path(next(iter(found.submodule_search_locations)))
    for name, directory in (
        (_ROOT, root),
        (f"{_ROOT}.client", root / "client"),
        (f"{_ROOT}.client.api", root / "client" / "api"),
        (f"{_ROOT}.client.models", root / "client" / "models"),
    ):
        sys.modules[name] = _lazy_package(name, directory)
    sys.modules[_ROOT].__dict__["client"] = sys.modules[f"{_ROOT}.client"]
    client = sys.modules[f"{_ROOT}.client"]
    client.__dict__["api"] = sys.modules[f"{_ROOT}.client.api"]
    client.__dict__["models"] = sys.modules[f"{_ROOT}.client.models"]


_install()

from kubernetes_asyncio.client.api.coordination_v1_api import CoordinationV1Api  # noqa: E402
from kubernetes_asyncio.client.api_client import ApiClient  # noqa: E402
from kubernetes_asyncio.client.configuration import Configuration  # noqa: E402
from kubernetes_asyncio.client.exceptions import ApiException  # noqa: E402
from kubernetes_asyncio.config import (  # noqa: E402
    ConfigException,
    load_incluster_config,
    load_kube_config,
)

__all__ = [
    "ApiClient",
    "ApiException",
    "ConfigException",
    "Configuration",
    "CoordinationV1Api",
    "load_incluster_config",
    "load_kube_config",
]
