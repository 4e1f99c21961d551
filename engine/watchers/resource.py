"""Which Kubernetes resource a watcher follows: group, version, plural, kind and scope."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WatchedKind:
    """One resource type served by the API, e.g. ``WatchedKind("apps", "v1", "deployments",
    "Deployment", namespaced=True)``; the core group is ``""``.

    Guarantees: `collection_path` is the REST path the API server serves the collection on.
    Errors: `ValueError` when version, plural or kind is empty.
    """

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    def __post_init__(self) -> None:
        for field_name in ("version", "plural", "kind"):
            if not getattr(self, field_name):
                raise ValueError(f"WatchedKind needs a non-empty {field_name}")

    @property
    def api_version(self) -> str:
        """``group/version``, or just ``version`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection_path(self, namespace: str | None = None) -> str:
        """The collection's path: in `namespace` when given and the kind is namespaced,
        across all namespaces otherwise."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace and self.namespaced:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def describe(self) -> str:
        """A short name for logs and errors: ``plural.group/version``."""
        group = f".{self.group}" if self.group else ""
        return f"{self.plural}{group}/{self.version}"
