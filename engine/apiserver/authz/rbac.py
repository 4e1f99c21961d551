"""The RBAC authorizer: Roles, ClusterRoles, RoleBindings and ClusterRoleBindings read
from the store (indexed once per change to any of them), evaluated as upstream's
authorizer does, with ClusterRole aggregation by label selector."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.apiserver.authn.user_info import MASTERS, UserInfo, split_service_account
from engine.apiserver.authz.attributes import Attributes
from engine.apiserver.authz.rules import PolicyRule, rule_allows
from engine.apiserver.store.storage import Change, Store

GROUP = "rbac.authorization.k8s.io"
_PREFIX = f"{GROUP}/"


@dataclass(frozen=True)
class Decision:
    """An authorizer's answer; `reason` says which binding allowed, or why none could."""

    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class _Binding:
    kind: str  # RoleBinding or ClusterRoleBinding
    namespace: str
    name: str
    role_kind: str
    role_name: str
    subjects: tuple[Mapping[str, Any], ...]


@dataclass
class _Index:
    roles: dict[tuple[str, str], tuple[PolicyRule, ...]] = field(default_factory=dict)
    cluster_roles: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    by_subject: dict[tuple[str, str, str], list[_Binding]] = field(default_factory=dict)

    def add(self, binding: _Binding) -> None:
        for found in binding.subjects:
            key = _subject_key(found, binding.namespace)
            if key is not None:
                self.by_subject.setdefault(key, []).append(binding)


def _rules(obj: Mapping[str, Any]) -> tuple[PolicyRule, ...]:
    return tuple(
        PolicyRule.parse(rule) for rule in obj.get("rules") or () if isinstance(rule, dict)
    )


def _binding(kind: str, obj: Mapping[str, Any]) -> _Binding:
    meta = obj.get("metadata") or {}
    ref = obj.get("roleRef") or {}
    return _Binding(
        kind=kind,
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        role_kind=str(ref.get("kind") or ""),
        role_name=str(ref.get("name") or ""),
        subjects=tuple(s for s in obj.get("subjects") or () if isinstance(s, dict)),
    )


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    wanted = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        return False
    for expression in selector.get("matchExpressions") or ():
        key, op = expression.get("key"), expression.get("operator")
        values = expression.get("values") or ()
        present = key in labels
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and present and labels.get(key) in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return bool(wanted or selector.get("matchExpressions"))


def _subject_key(subject: Mapping[str, Any], binding_namespace: str) -> tuple[str, str, str] | None:
    kind, name = str(subject.get("kind") or ""), str(subject.get("name") or "")
    if kind in ("User", "Group"):
        return kind, "", name
    if kind == "ServiceAccount":
        return kind, str(subject.get("namespace") or binding_namespace), name
    return None


def _user_keys(user: UserInfo) -> list[tuple[str, str, str]]:
    keys = [("User", "", user.name), *(("Group", "", group) for group in user.groups)]
    account = split_service_account(user.name)
    if account is not None:
        keys.append(("ServiceAccount", *account))
    return keys


class RbacAuthorizer:
    """Answers `authorize(attrs)` from the RBAC objects in `store`; system:masters is
    allowed everything without a look-up, as upstream's privileged-group authorizer."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._index: _Index | None = None
        store.add_listener(self._invalidate)

    def _invalidate(self, changes: Sequence[Change]) -> None:
        if any(change.key.startswith(_PREFIX) for change in changes):
            self._index = None

    def _built(self) -> _Index:
        if self._index is not None:
            return self._index
        index = _Index()
        for _, obj in self._store.items(f"{_PREFIX}roles/"):
            meta = obj.get("metadata") or {}
            index.roles[(str(meta.get("namespace")), str(meta.get("name")))] = _rules(obj)
        for _, obj in self._store.items(f"{_PREFIX}clusterroles/"):
            index.cluster_roles[str((obj.get("metadata") or {}).get("name"))] = obj
        for _, obj in self._store.items(f"{_PREFIX}clusterrolebindings/"):
            index.add(_binding("ClusterRoleBinding", obj))
        for _, obj in self._store.items(f"{_PREFIX}rolebindings/"):
            index.add(_binding("RoleBinding", obj))
        self._index = index
        return index

    def _cluster_role_rules(self, index: _Index, name: str) -> tuple[PolicyRule, ...] | None:
        role = index.cluster_roles.get(name)
        if role is None:
            return None
        aggregation = role.get("aggregationRule") or {}
        selectors = aggregation.get("clusterRoleSelectors") or ()
        if not selectors:
            return _rules(role)
        rules = list(_rules(role))
        for other_name, other in sorted(index.cluster_roles.items()):
            labels = (other.get("metadata") or {}).get("labels") or {}
            if other_name != name and any(_selects(s, labels) for s in selectors):
                rules.extend(_rules(other))
        return tuple(rules)

    def _role_rules(
        self, index: _Index, binding: _Binding
    ) -> tuple[tuple[PolicyRule, ...] | None, str]:
        if binding.role_kind == "ClusterRole":
            return self._cluster_role_rules(index, binding.role_name), (
                f'clusterrole.{GROUP} "{binding.role_name}" not found'
            )
        if binding.role_kind == "Role" and binding.kind == "RoleBinding":
            return index.roles.get((binding.namespace, binding.role_name)), (
                f'role.{GROUP} "{binding.role_name}" not found'
            )
        return None, f'{binding.kind} "{binding.name}" refers to an unknown role kind'

    def stored(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored RBAC object `resource` (plural) named `name`, if any."""
        return self._store.get(f"{_PREFIX}{resource}/{namespace}/{name}")

    def referenced_rules(
        self, role_kind: str, role_name: str, namespace: str
    ) -> tuple[PolicyRule, ...] | None:
        """The rules of the Role (in `namespace`) or ClusterRole a roleRef names; None if
        it does not exist."""
        index = self._built()
        if role_kind == "ClusterRole":
            return self._cluster_role_rules(index, role_name)
        if role_kind == "Role" and namespace:
            return index.roles.get((namespace, role_name))
        return None

    def applicable(self, user: UserInfo, namespace: str) -> tuple[list[_Binding], _Index]:
        """The bindings that name `user` and apply in `namespace` ("" = cluster only)."""
        index = self._built()
        found: dict[int, _Binding] = {}  # by identity: a binding may name the user twice
        for key in _user_keys(user):
            for binding in index.by_subject.get(key, ()):
                if binding.kind == "ClusterRoleBinding" or binding.namespace == namespace:
                    found.setdefault(id(binding), binding)
        return list(found.values()), index

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[PolicyRule], list[str]]:
        """Every rule granted to `user` in `namespace`, and the errors met resolving them."""
        bindings, index = self.applicable(user, namespace)
        rules: list[PolicyRule] = []
        errors: list[str] = []
        for binding in bindings:
            granted, missing = self._role_rules(index, binding)
            if granted is None:
                errors.append(missing)
            else:
                rules.extend(granted)
        return rules, errors

    def authorize(self, attrs: Attributes) -> Decision:
        """Allowed when some binding naming the user grants a matching rule."""
        if MASTERS in attrs.user.groups:
            return Decision(True)
        bindings, index = self.applicable(attrs.user, attrs.namespace)
        errors: list[str] = []
        for binding in bindings:
            granted, missing = self._role_rules(index, binding)
            if granted is None:
                errors.append(missing)
                continue
            if any(rule_allows(rule, attrs) for rule in granted):
                where = f' in namespace "{binding.namespace}"' if binding.namespace else ""
                return Decision(
                    True,
                    f'RBAC: allowed by {binding.kind} "{binding.name}"{where} of '
                    f'{binding.role_kind} "{binding.role_name}" to {attrs.user.name}',
                )
        if not errors:
            return Decision(False)
        joined = errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"
        return Decision(False, f"RBAC: {joined}")


class AlwaysAllow:
    """The AlwaysAllow authorization mode: every request is allowed (the default)."""

    def authorize(self, attrs: Attributes) -> Decision:
        """Always allowed."""
        return Decision(True)
