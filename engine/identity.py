"""Who a resource is, as three small frozen values used everywhere: the `Kind` it is
(group, version, plural, kind, scope), the `ObjectRef` that names one object (the work
queue's key) and the `StreamId` of its journal stream (`group/kind/namespace/name#uid`).

Every place that builds, splits or converts these goes through here; nothing parses a
stream name or a queue key by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind the API server serves: group ("" = core), version, plural, kind, scope.

    Errors: `ValueError` when version, plural or kind is empty.
    """

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    def __post_init__(self) -> None:
        for field_name in ("version", "plural", "kind"):
            if not getattr(self, field_name):
                raise ValueError(f"a Kind needs a non-empty {field_name}")

    @property
    def api_version(self) -> str:
        """`group/version`, or just `version` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str = "", subresource: str = "") -> str:
        """The REST path of the collection (no `name`) or of one object (or its
        subresource), in `namespace` when the kind is namespaced."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base = f"{base}/namespaces/{namespace}"
        path = f"{base}/{self.plural}"
        if name:
            path = f"{path}/{name}"
        if subresource:
            path = f"{path}/{subresource}"
        return path

    def describe(self) -> str:
        """A short name for logs and errors: `plural.group/version`."""
        group = f".{self.group}" if self.group else ""
        return f"{self.plural}{group}/{self.version}"


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    """One object by name: `namespace/name` (`/name` when cluster-scoped) is its queue key."""

    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        """The reference of an object as the API server returns it."""
        metadata = obj.get("metadata") or {}
        return cls(str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))

    @classmethod
    def parse(cls, key: str) -> ObjectRef:
        """The reference named by a queue key (`namespace/name` or `/name`)."""
        namespace, _, name = key.partition("/")
        return cls(namespace, name)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def label(self) -> str:
        """`namespace/name`, or just `name` when cluster-scoped (how people name it)."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class StreamId:
    """The journal stream of one resource: `group/kind/namespace/name#uid`.

    The uid keeps a deleted-and-recreated object (same name, new uid) in its own stream;
    a cluster-scoped resource has an empty namespace. A stream of another shape (the
    engine's own `engine/leader`, say) parses with its whole text as the name.
    """

    group: str
    kind: str
    namespace: str
    name: str
    uid: str

    @classmethod
    def of(cls, kind: Kind, obj: Mapping[str, Any]) -> StreamId:
        """The stream of `obj`, an object of `kind`."""
        metadata = obj.get("metadata") or {}
        return cls(
            group=kind.group,
            kind=kind.kind,
            namespace=_storable(str(metadata.get("namespace") or "")),
            name=_storable(str(metadata.get("name") or "")),
            uid=_storable(str(metadata.get("uid") or "")),
        )

    @classmethod
    def parse(cls, text: str) -> StreamId:
        """The stream named `text` (the inverse of `str`)."""
        path, _, uid = text.rpartition("#")
        parts = path.split("/") if path else []
        if len(parts) < 4:
            return cls(group="", kind="", namespace="", name=text, uid="")
        return cls("/".join(parts[:-3]), parts[-3], parts[-2], parts[-1], uid)

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.namespace, self.name)

    @property
    def label(self) -> str:
        return self.ref.label

    def belongs_to(self, kind: Kind) -> bool:
        """Whether this is the stream of an object of `kind`."""
        return (self.group, self.kind) == (kind.group, kind.kind) and bool(self.uid)

    def __str__(self) -> str:
        return f"{self.group}/{self.kind}/{self.namespace}/{self.name}#{self.uid}"


def _storable(text: str) -> str:
    """`text` as a stream name can hold it: a lone surrogate (no API server accepts one in
    a name, but a watch may still deliver it) as its backslash escape, since UTF-8, the
    checksum's and the databases' encoding, has no form for it."""
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode(errors="backslashreplace").decode()
    return text
