"""The operator API: what a user declares to get an operator from the engine.

An operator is data: the custom resource it owns (group, version, kind, plural, OpenAPI
v3 schema with required fields and defaults, printer columns), the child kinds it
creates, and two async handlers, `provision` and `finalize`, that receive one `Context`;
optionally admission handlers (`validate`, `mutate`) and more served versions with their
converters, which the engine serves as webhooks (docs/webhooks.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from engine.identity import Kind
from engine.runtime.reconcile.admission import MutateHandler, ServedVersion, ValidateHandler
from engine.runtime.reconcile.code_version import handlers_source_version

if TYPE_CHECKING:
    from engine.runtime.reconcile.handler_context import Context

Handler = Callable[["Context"], Awaitable[None]]
"""A provision or finalize handler. It runs as one effect; its own steps
(`ctx.apply_child`, `ctx.effect`) are effects under their own keys, so a re-run after a
crash or a retry skips the steps already recorded. Raise `PermanentError` for a failure
that needs a spec change; any other exception is retried with backoff."""

Propagation = Literal["Background", "Foreground", "Orphan"]


@dataclass(frozen=True)
class CustomResource:
    """The primary custom resource the operator reconciles.

    `schema` is the `openAPIV3Schema` of the served version (the whole object: `spec`
    and `status` properties). `printer_columns` are CRD `additionalPrinterColumns`.
    """

    group: str
    version: str
    kind: str
    plural: str
    schema: Mapping[str, Any]
    singular: str = ""
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    printer_columns: tuple[Mapping[str, Any], ...] = ()
    served_versions: tuple[ServedVersion, ...] = ()
    """More versions served beside `version` (the storage version and conversion hub)."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def version_names(self) -> tuple[str, ...]:
        """Every served version, the storage version first."""
        return (self.version, *(v.name for v in self.served_versions))

    def served_version(self, name: str) -> ServedVersion | None:
        """The declared non-storage version `name`, if any."""
        for version in self.served_versions:
            if version.name == name:
                return version
        return None

    @property
    def kind_ref(self) -> Kind:
        """Where the resource is served, as the engine names kinds everywhere."""
        return Kind(self.group, self.version, self.plural, self.kind, self.namespaced)

    def crd(self, conversion: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The CustomResourceDefinition manifest (apiextensions.k8s.io/v1), with a status
        subresource so status writes never bump `generation`.

        With `served_versions`, every version is served (the storage one first) and
        `conversion` (a `spec.conversion` block: strategy Webhook and its client config)
        is set; without it such a CRD says `strategy: Webhook` with no client config yet.
        """
        singular = self.singular or self.kind.lower()
        versions = [self._version_entry(self.version, self.schema, self.printer_columns, True)]
        versions += [
            self._version_entry(v.name, v.schema, v.printer_columns, False)
            for v in self.served_versions
        ]
        names: dict[str, Any] = {
            "kind": self.kind,
            "plural": self.plural,
            "singular": singular,
            "listKind": f"{self.kind}List",
        }
        if self.short_names:
            names["shortNames"] = list(self.short_names)
        spec: dict[str, Any] = {
            "group": self.group,
            "names": names,
            "scope": "Namespaced" if self.namespaced else "Cluster",
            "versions": versions,
        }
        if self.served_versions:
            spec["conversion"] = dict(conversion or {"strategy": "Webhook"})
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{self.plural}.{self.group}"},
            "spec": spec,
        }

    @staticmethod
    def _version_entry(
        name: str,
        schema: Mapping[str, Any],
        columns: tuple[Mapping[str, Any], ...],
        storage: bool,
    ) -> dict[str, Any]:
        version: dict[str, Any] = {
            "name": name,
            "served": True,
            "storage": storage,
            "schema": {"openAPIV3Schema": dict(schema)},
            "subresources": {"status": {}},
        }
        if columns:
            version["additionalPrinterColumns"] = [dict(c) for c in columns]
        return version


@dataclass(frozen=True)
class ChildKind:
    """A kind of object the operator creates and owns (ownerReferences with
    `controller: true` and `blockOwnerDeletion: true`).

    `group` is "" for the core group. `delete_propagation` is the policy used when the
    engine itself deletes a child of this kind.
    """

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    delete_propagation: Propagation = "Background"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def kind_ref(self) -> Kind:
        """Where the child kind is served, as the engine names kinds everywhere."""
        return Kind(self.group, self.version, self.plural, self.kind, self.namespaced)


@dataclass(frozen=True)
class Operator:
    """An operator: one custom resource, its child kinds, and its handlers.

    `finalizer` defaults to `<group>/finalizer`. `secret_fields` are dotted paths (for
    example `spec.password`) whose values never reach the journal, spans, logs, Events
    or error messages. `validate` and `mutate` (sync or async, given an
    `AdmissionRequest`) are served as admission webhooks for `admission_operations`.
    or error messages. `code_version` names the handlers' version, stamped on every
    record a reconcile writes; empty means a hash of the handlers' source and their
    modules' (`handler_version`).
    """

    resource: CustomResource
    provision: Handler
    finalize: Handler | None = None
    children: tuple[ChildKind, ...] = ()
    finalizer: str = ""
    secret_fields: tuple[str, ...] = field(default=())
    validate: ValidateHandler | None = None
    mutate: MutateHandler | None = None
    admission_operations: tuple[str, ...] = ("CREATE", "UPDATE")

    @property
    def serves_webhooks(self) -> bool:
        """Whether the engine serves webhooks for it (admission or conversion)."""
        return bool(self.validate or self.mutate or self.resource.served_versions)

    code_version: str = ""

    @property
    def handler_version(self) -> str:
        """The handler code version: `code_version`, or the hash of the handlers' source."""
        return self.code_version or handlers_source_version(self.provision, self.finalize)

    @property
    def finalizer_name(self) -> str:
        return self.finalizer or f"{self.resource.group}/finalizer"

    @property
    def holds_finalizer(self) -> bool:
        """Whether deleting a resource needs the engine, so its finalizer goes on each
        resource before the first effect: a `finalize` step to run, or a child kind the
        garbage collector cannot remove by its ownerReference (a cluster-scoped child of
        a namespaced resource). Otherwise every child is owned and goes with its owner,
        and the engine sends no finalizer writes."""
        if self.finalize is not None:
            return True
        return self.resource.namespaced and any(not c.namespaced for c in self.children)

    def child_kind(self, api_version: str, kind: str) -> ChildKind | None:
        """The declared child kind for a manifest's apiVersion and kind, if any."""
        for child in self.children:
            if child.api_version == api_version and child.kind == kind:
                return child
        return None
