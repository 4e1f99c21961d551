"""RBAC's escalation prevention, as upstream's Role and binding storage: a user may write
a Role or ClusterRole only with rules it already holds (or the `escalate` verb on it), and
a RoleBinding or ClusterRoleBinding only to a role whose rules it holds (or the `bind`
verb on that role); otherwise 403 naming the permissions not held."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from engine.apiserver.authn.user_info import MASTERS
from engine.apiserver.authz.attributes import Attributes
from engine.apiserver.authz.rbac import GROUP, RbacAuthorizer
from engine.apiserver.authz.rules import ALL, PolicyRule
from engine.apiserver.store.errors import ApiError, not_found

ROLE_KINDS = {"roles": "Role", "clusterroles": "ClusterRole"}
BINDING_KINDS = {"rolebindings": "RoleBinding", "clusterrolebindings": "ClusterRoleBinding"}


def guarded(attrs: Attributes) -> bool:
    """True for the writes escalation prevention looks at (by users outside system:masters)."""
    return (
        attrs.resource_request
        and attrs.api_group == GROUP
        and attrs.resource in {**ROLE_KINDS, **BINDING_KINDS}
        and not attrs.subresource
        and attrs.verb in ("create", "update", "patch")
        and MASTERS not in attrs.user.groups
    )


def _atoms(rule: PolicyRule) -> Iterator[PolicyRule]:
    for verb in rule.verbs:
        for url in rule.non_resource_urls:
            yield PolicyRule(verbs=(verb,), non_resource_urls=(url,))
        for group in rule.api_groups:
            for resource in rule.resources:
                for name in rule.resource_names or ("",):
                    yield PolicyRule(
                        verbs=(verb,),
                        api_groups=(group,),
                        resources=(resource,),
                        resource_names=(name,) if name else (),
                    )


def _resource_covers(owned: Sequence[str], resource: str) -> bool:
    if ALL in owned or resource in owned:
        return True
    _, sep, sub = resource.partition("/")
    return bool(sep) and f"*/{sub}" in owned


def _covers(owner: PolicyRule, atom: PolicyRule) -> bool:
    if ALL not in owner.verbs and atom.verbs[0] not in owner.verbs:
        return False
    if atom.non_resource_urls:
        url = atom.non_resource_urls[0]
        return any(
            held in (ALL, url) or (held.endswith(ALL) and url.startswith(held[:-1]))
            for held in owner.non_resource_urls
        )
    if ALL not in owner.api_groups and atom.api_groups[0] not in owner.api_groups:
        return False
    if not _resource_covers(owner.resources, atom.resources[0]):
        return False
    if not owner.resource_names:
        return True
    return bool(atom.resource_names) and atom.resource_names[0] in owner.resource_names


def missing_rules(owned: Sequence[PolicyRule], granted: Sequence[PolicyRule]) -> list[PolicyRule]:
    """The atomic rules of `granted` that no rule of `owned` covers."""
    return [
        atom
        for rule in granted
        for atom in _atoms(rule)
        if not any(_covers(owner, atom) for owner in owned)
    ]


def _go_list(values: Sequence[str]) -> str:
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def _describe(rule: PolicyRule) -> str:
    if rule.non_resource_urls:
        return (
            f"{{NonResourceURLs:{_go_list(rule.non_resource_urls)}, Verbs:{_go_list(rule.verbs)}}}"
        )
    names = f", ResourceNames:{_go_list(rule.resource_names)}" if rule.resource_names else ""
    return (
        f"{{APIGroups:{_go_list(rule.api_groups)}, Resources:{_go_list(rule.resources)}"
        f"{names}, Verbs:{_go_list(rule.verbs)}}}"
    )


def _refuse(attrs: Attributes, name: str, missing: Sequence[PolicyRule]) -> ApiError:
    user = attrs.user
    text = (
        f'{attrs.resource}.{GROUP} "{name}" is forbidden: user "{user.name}" '
        f"(groups={_go_list(user.groups)}) is attempting to grant RBAC permissions not "
        "currently held:\n" + "\n".join(_describe(rule) for rule in missing)
    )
    details = {"group": GROUP, "kind": attrs.resource, "name": name}
    return ApiError(403, text, reason="Forbidden", details=details)


def _may(authorizer: RbacAuthorizer, attrs: Attributes, *, verb: str, resource: str,
         name: str) -> bool:  # fmt: skip
    asked = Attributes(
        user=attrs.user, verb=verb, resource_request=True, api_group=GROUP,
        namespace=attrs.namespace, resource=resource, name=name,
    )  # fmt: skip
    return authorizer.authorize(asked).allowed


def check_escalation(
    authorizer: RbacAuthorizer, attrs: Attributes, body: Mapping[str, Any] | None
) -> None:
    """Raise the 403 (or the 404 of a missing role) when the write `attrs` with object
    `body` would grant more than the user holds. A patch (whose result is not known
    here) of a Role or ClusterRole needs the `escalate` verb outright."""
    name = str(((body or {}).get("metadata") or {}).get("name") or attrs.name)
    owned, _ = authorizer.rules_for(attrs.user, attrs.namespace)
    if attrs.resource in ROLE_KINDS:
        if _may(authorizer, attrs, verb="escalate", resource=attrs.resource, name=name):
            return
        granted = [
            PolicyRule.parse(r) for r in (body or {}).get("rules") or () if isinstance(r, dict)
        ]
        if attrs.verb == "patch":
            granted = [
                PolicyRule(verbs=("escalate",), api_groups=(GROUP,), resources=(attrs.resource,))
            ]
        missing = missing_rules(owned, granted)
        if missing:
            raise _refuse(attrs, name, missing)
        return
    if attrs.verb == "patch":
        # roleRef cannot change, so a patch binds the stored binding's role again
        body = authorizer.stored(attrs.resource, attrs.namespace, attrs.name)
        if body is None:
            return  # nothing to patch: the write answers 404 itself
    ref = (body or {}).get("roleRef") or {}
    role_kind, role_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
    role_resource = "clusterroles" if role_kind == "ClusterRole" else "roles"
    if _may(authorizer, attrs, verb="bind", resource=role_resource, name=role_name):
        return
    rules = authorizer.referenced_rules(role_kind, role_name, attrs.namespace)
    if rules is None:
        raise not_found(role_resource, role_name, group=GROUP)
    missing = missing_rules(owned, rules)
    if missing:
        raise _refuse(attrs, name, missing)
