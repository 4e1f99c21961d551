"""The RBAC an operator's engine needs, derived from what the operator declares: exactly
the requests the engine makes for its resource, its child kinds, Events and its Lease.

The verbs follow the engine's code: the watchers list and watch the resource and every
child kind; the KubeWriter patches finalizers and status, re-reads the resource (get)
after a conflict, server-side applies children (patch) and creates Events; start-up
applies the operator's own CRD (patch). Children are deleted by the API server's garbage
collector through their ownerReferences, so the engine needs no delete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine import Operator

Manifest = dict[str, Any]

RESOURCE_VERBS = ("get", "list", "watch", "patch")
CHILD_VERBS = ("list", "watch", "patch")


def cluster_role(operator: Operator, *, name: str) -> Manifest:
    """The ClusterRole `name`: the operator's CRD, resource, subresources, children, Events."""
    resource = operator.resource
    rules: list[Manifest] = [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "resourceNames": [f"{resource.plural}.{resource.group}"],
            "verbs": ["patch"],
        },
        {"apiGroups": [resource.group], "resources": [resource.plural],
         "verbs": list(RESOURCE_VERBS)},
        {"apiGroups": [resource.group], "resources": [f"{resource.plural}/status"],
         "verbs": ["patch"]},
        # Children carry ownerReferences with blockOwnerDeletion: true, which needs update
        # on the owner's finalizers (OwnerReferencesPermissionEnforcement).
        {"apiGroups": [resource.group], "resources": [f"{resource.plural}/finalizers"],
         "verbs": ["update"]},
    ]  # fmt: skip
    by_group: dict[str, list[str]] = {}
    for child in operator.children:
        plurals = by_group.setdefault(child.group, [])
        if child.plural not in plurals:
            plurals.append(child.plural)
    for group, plurals in by_group.items():
        rules.append({"apiGroups": [group], "resources": plurals, "verbs": list(CHILD_VERBS)})
    rules.append({"apiGroups": [""], "resources": ["events"], "verbs": ["create"]})
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": rules,
    }


def cluster_role_binding(*, name: str, namespace: str) -> Manifest:
    """Binds the ClusterRole `name` to the ServiceAccount `name` in `namespace`."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }


def leader_election_role(*, name: str, lease: str) -> Manifest:
    """The Role for the one Lease: get and update by name; create cannot be limited by
    resourceNames (the name is not in the request URL), so it covers this namespace only."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": f"{name}-leader-election"},
        "rules": [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": [lease], "verbs": ["get", "update"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "verbs": ["create"]},
        ],
    }  # fmt: skip


def leader_election_role_binding(*, name: str, namespace: str) -> Manifest:
    """Binds the Lease Role to the ServiceAccount `name`."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{name}-leader-election"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": f"{name}-leader-election",
        },
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }


def service_account(*, name: str) -> Manifest:
    """The ServiceAccount the engine runs as."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
