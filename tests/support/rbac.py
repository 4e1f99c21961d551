"""RBAC rules as data and the authorizer's matching: does a rule set allow a request, and
which (group, resource, verb) grants did a set of requests use. Follows the Kubernetes
RBAC semantics the engine's roles rely on: a rule matches a request when its apiGroups,
resources ("plural" or "plural/subresource") and verbs contain the request's, and its
resourceNames are empty or contain the request's name; a Role's rules apply in its own
namespace only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Request:
    """One API request as the audit log records it."""

    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        name = f" {self.name}" if self.name else ""
        return f"{self.verb} {self.group or 'core'}/{self.full_resource}{name}{where}"


@dataclass(frozen=True)
class Rule:
    """One PolicyRule; `namespace` is the Role's namespace, or None for a ClusterRole."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    resource_names: tuple[str, ...]
    namespace: str | None
    role: str

    def allows(self, request: Request) -> bool:
        if self.namespace is not None and request.namespace != self.namespace:
            return False
        if self.resource_names and request.name not in self.resource_names:
            return False
        return (
            request.group in self.api_groups
            and request.full_resource in self.resources
            and request.verb in self.verbs
        )

    def grants(self) -> set[tuple[str, str, str]]:
        """Every (group, resource, verb) this rule grants."""
        return {(g, r, v) for g in self.api_groups for r in self.resources for v in self.verbs}


def rules_of(role: Mapping[str, Any]) -> list[Rule]:
    """The rules of a rendered Role or ClusterRole."""
    namespace = role["metadata"].get("namespace") if role["kind"] == "Role" else None
    name = f"{role['kind']}/{role['metadata']['name']}"
    return [
        Rule(
            api_groups=tuple(rule.get("apiGroups", ())),
            resources=tuple(rule.get("resources", ())),
            verbs=tuple(rule.get("verbs", ())),
            resource_names=tuple(rule.get("resourceNames", ())),
            namespace=namespace,
            role=name,
        )
        for rule in role.get("rules", [])
    ]


def roles_in(manifests: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The Roles and ClusterRoles among `manifests`."""
    return [m for m in manifests if m["kind"] in ("Role", "ClusterRole")]


def denied(rules: Sequence[Rule], requests: Iterable[Request]) -> list[Request]:
    """The requests no rule allows, each once."""
    return sorted({r for r in requests if not any(rule.allows(r) for rule in rules)}, key=str)


def unused_grants(rules: Sequence[Rule], requests: Iterable[Request]) -> set[tuple[str, str, str]]:
    """The (group, resource, verb) grants of `rules` that no request in `requests` used."""
    used = {
        (r.group, r.full_resource, r.verb) for r in requests for rule in rules if rule.allows(r)
    }
    return {grant for rule in rules for grant in rule.grants()} - used
