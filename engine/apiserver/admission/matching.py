"""Which webhooks a request goes to: rules (operations, apiGroups, apiVersions,
resources with `*`, `pods/status`, `*/status`, `pods/*`, `*/*`, scope), namespaceSelector,
objectSelector and matchPolicy (Exact, or Equivalent: another served version of the
same resource), as kube-apiserver matches them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.apiserver.admission.configurations import Rule, Webhook
from engine.apiserver.store.resource_types import ResourceType


@dataclass(frozen=True)
class RequestedResource:
    """What a request addresses: operation (CREATE, UPDATE, DELETE), type, subresource."""

    operation: str
    rtype: ResourceType
    subresource: str


def _listed(values: Sequence[str], wanted: str) -> bool:
    return "*" in values or wanted in values


def _resource_listed(resources: Sequence[str], plural: str, subresource: str) -> bool:
    """As upstream's matcher: `res[/sub]` where `*` matches any value of its part and a
    missing `/sub` matches only the main resource (so `pods/*` and `*/*` match it too)."""
    for entry in resources:
        name, _, sub = entry.partition("/")
        if name in ("*", plural) and sub in ("*", subresource):
            return True
    return False


def rule_matches(rule: Rule, request: RequestedResource, rtype: ResourceType) -> bool:
    """Whether `rule` names the request's operation on `rtype` (maybe another version)."""
    if not _listed(rule.operations, request.operation):
        return False
    if not _listed(rule.api_groups, rtype.group) or not _listed(rule.api_versions, rtype.version):
        return False
    if not _resource_listed(rule.resources, rtype.plural, request.subresource):
        return False
    if rule.scope == "Cluster":
        return not rtype.namespaced
    if rule.scope == "Namespaced":
        return rtype.namespaced
    return True


def matched_type(
    hook: Webhook, request: RequestedResource, equivalents: Sequence[ResourceType]
) -> ResourceType | None:
    """The type the webhook is called for: the request's own when a rule names it, else
    (matchPolicy Equivalent) the first other served version a rule names, else None."""
    if any(rule_matches(rule, request, request.rtype) for rule in hook.rules):
        return request.rtype
    if hook.match_policy != "Equivalent":
        return None
    for other in equivalents:
        if any(rule_matches(rule, request, other) for rule in hook.rules):
            return other
    return None


def selector_selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector over `labels`; an empty or missing selector selects everything."""
    if not selector:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or ():
        key = str(expression.get("key", ""))
        values = expression.get("values") or ()
        operator = expression.get("operator")
        if operator == "In":
            ok = key in labels and labels[key] in values
        elif operator == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif operator == "Exists":
            ok = key in labels
        elif operator == "DoesNotExist":
            ok = key not in labels
        else:
            ok = False
        if not ok:
            return False
    return True


def labels_of(obj: Mapping[str, Any] | None) -> dict[str, str]:
    """The object's labels ({} for None)."""
    if not obj:
        return {}
    return dict((obj.get("metadata") or {}).get("labels") or {})


def objects_selected(
    hook: Webhook, obj: Mapping[str, Any] | None, old: Mapping[str, Any] | None
) -> bool:
    """objectSelector: the new or the old object's labels match (either is enough)."""
    if not hook.object_selector:
        return True
    return any(
        selector_selects(hook.object_selector, labels_of(candidate))
        for candidate in (obj, old)
        if candidate is not None
    )


def namespace_selected(
    hook: Webhook,
    rtype: ResourceType,
    namespace_labels: Mapping[str, str] | None,
    obj: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
) -> bool:
    """namespaceSelector: on the namespace's labels for a namespaced object, on the object's
    own labels for a Namespace; other cluster-scoped objects are never excluded by it."""
    if not hook.namespace_selector:
        return True
    if rtype.group == "" and rtype.kind == "Namespace":
        return selector_selects(hook.namespace_selector, labels_of(obj or old))
    if not rtype.namespaced:
        return True
    return selector_selects(hook.namespace_selector, namespace_labels or {})
