"""RBAC PolicyRule matching, as upstream's `RuleAllows`: verbs, API groups, resources
(`*`, `resource/subresource`, `*/subresource`), resource names and non-resource URLs
(exact, `*`, or a prefix ending in `*`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.apiserver.authz.attributes import Attributes

ALL = "*"


@dataclass(frozen=True)
class PolicyRule:
    """One rule of a Role or ClusterRole (rbac.authorization.k8s.io/v1 PolicyRule)."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @staticmethod
    def parse(rule: Mapping[str, Any]) -> PolicyRule:
        """A rule from its JSON form (missing lists are empty)."""

        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(item) for item in rule.get(key) or ())

        return PolicyRule(
            verbs=strings("verbs"),
            api_groups=strings("apiGroups"),
            resources=strings("resources"),
            resource_names=strings("resourceNames"),
            non_resource_urls=strings("nonResourceURLs"),
        )

    def as_json(self) -> dict[str, Any]:
        """The JSON form (as a ResourceRule or NonResourceRule of a rules review)."""
        if self.non_resource_urls:
            return {"verbs": list(self.verbs), "nonResourceURLs": list(self.non_resource_urls)}
        body: dict[str, Any] = {
            "verbs": list(self.verbs),
            "apiGroups": list(self.api_groups),
            "resources": list(self.resources),
        }
        if self.resource_names:
            body["resourceNames"] = list(self.resource_names)
        return body


def _verb_matches(rule: PolicyRule, verb: str) -> bool:
    return ALL in rule.verbs or verb in rule.verbs


def _group_matches(rule: PolicyRule, group: str) -> bool:
    return ALL in rule.api_groups or group in rule.api_groups


def _resource_matches(rule: PolicyRule, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for allowed in rule.resources:
        if allowed in (ALL, combined):
            return True
        if subresource and allowed == f"*/{subresource}":
            return True
    return False


def _name_matches(rule: PolicyRule, name: str) -> bool:
    return not rule.resource_names or name in rule.resource_names


def _url_matches(rule: PolicyRule, path: str) -> bool:
    for allowed in rule.non_resource_urls:
        if allowed in (ALL, path):
            return True
        if allowed.endswith(ALL) and path.startswith(allowed[:-1]):
            return True
    return False


def rule_allows(rule: PolicyRule, attrs: Attributes) -> bool:
    """True when `rule` grants the request `attrs` describes."""
    if not _verb_matches(rule, attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule, attrs.path)
    return (
        _group_matches(rule, attrs.api_group)
        and _resource_matches(rule, attrs.resource, attrs.subresource)
        and _name_matches(rule, attrs.name)
    )


def rules_allow(rules: Sequence[PolicyRule], attrs: Attributes) -> bool:
    """True when any of `rules` grants `attrs`."""
    return any(rule_allows(rule, attrs) for rule in rules)
