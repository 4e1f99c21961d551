"""An operator's kustomize base as files (relative path → YAML text): the namespace, the
CRD, the RBAC, the state claim, the Deployment and the metrics Service, and the
kustomization that ties them (`kubectl apply -k DIR`). Deterministic: the same operator
and options give the same bytes, so a checked-in base can be compared with a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from engine.deploy import cluster_role as rbac
from engine.deploy import workload

if TYPE_CHECKING:
    from engine import Operator


@dataclass(frozen=True)
class BaseOptions:
    """What the operator does not say: the image, the namespace and the object names.

    `operator_ref` is what the Deployment runs (`--operator`); `name` names the
    ServiceAccount, roles, Deployment, claim (`<name>-state`) and Lease (`<name>-leader`).
    """

    operator_ref: str
    image: str
    namespace: str = "engine-system"
    name: str = "engine"

    @property
    def lease(self) -> str:
        return f"{self.name}-leader"


def to_yaml(manifest: dict[str, Any], *, comment: str = "") -> str:
    """One manifest as YAML, after `comment` as `#` lines (block style, keys in order)."""
    lines = "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines())
    return lines + yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False)


def crd_yaml(operator: Operator, *, operator_ref: str) -> str:
    """The operator's CRD, as `engine crd` prints it and the base holds it."""
    comment = (
        f"The {operator.resource.kind} CRD, rendered from the operator {operator_ref}\n"
        f"(regenerate: engine crd --operator {operator_ref})."
    )
    return to_yaml(operator.resource.crd(), comment=comment)


def image_parts(image: str) -> tuple[str, str | None, str | None]:
    """`image` as (name, tag, digest); a registry's port is not a tag."""
    name, _, digest = image.partition("@")
    repository, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:
        return repository, tag, digest or None
    return name, None, digest or None


def render_base(operator: Operator, options: BaseOptions) -> dict[str, str]:
    """Every file of the base, keyed by its path relative to the base directory."""
    name, namespace = options.name, options.namespace
    image_name, tag, digest = image_parts(options.image)
    crd_file = f"crd/{operator.resource.singular or operator.resource.kind.lower()}.yaml"
    files = {
        "namespace.yaml": to_yaml(
            workload.namespace(namespace),
            comment="Where the engine runs; Pod Security admission enforces the restricted "
            "profile.",
        ),
        crd_file: crd_yaml(operator, operator_ref=options.operator_ref),
        "rbac/service_account.yaml": to_yaml(rbac.service_account(name=name)),
        "rbac/cluster_role.yaml": to_yaml(
            rbac.cluster_role(operator, name=name),
            comment="Exactly the requests the engine makes for this operator: its CRD (applied\n"
            "at start), its resource, status and finalizers, list/watch/patch (server-side\n"
            "apply) of each child kind, and Events. No wildcards, no Secrets, no delete\n"
            "(children go with their owner through the garbage collector).",
        ),
        "rbac/cluster_role_binding.yaml": to_yaml(
            rbac.cluster_role_binding(name=name, namespace=namespace)
        ),
        "rbac/leader_election_role.yaml": to_yaml(
            rbac.leader_election_role(name=name, lease=options.lease),
            comment="Leader election: one Lease in the engine's own namespace, get and "
            "update by name.",
        ),
        "rbac/leader_election_role_binding.yaml": to_yaml(
            rbac.leader_election_role_binding(name=name, namespace=namespace)
        ),
        "manager/state_pvc.yaml": to_yaml(
            workload.state_claim(name=name),
            comment="The journal lives here. ReadWriteOnce: one pod at a time.",
        ),
        "manager/deployment.yaml": to_yaml(
            workload.deployment(
                name=name,
                image=image_name,
                operator_ref=options.operator_ref,
                lease=options.lease,
            ),
            comment="One replica, Recreate (two pods must never share the journal), leader\n"
            "election on as a guard; restricted Pod Security: non-root, read-only root\n"
            "filesystem, no capabilities, seccomp RuntimeDefault.",
        ),
        "manager/metrics_service.yaml": to_yaml(
            workload.metrics_service(name=name),
            comment="/metrics (Prometheus text format) on the engine's health port.",
        ),
    }
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        "labels": [{"pairs": {"app.kubernetes.io/part-of": name}, "includeSelectors": False}],
        "resources": list(files),
    }
    pinned: dict[str, str] = {"name": image_name}
    if tag is not None:
        pinned["newTag"] = tag
    if digest is not None:
        pinned["digest"] = digest
    if len(pinned) > 1:
        kustomization["images"] = [pinned]
    files["kustomization.yaml"] = to_yaml(
        kustomization,
        comment=f"The engine running {options.operator_ref}, as one kustomize base\n"
        "(generated by `engine manifests`; render: kubectl kustomize DIR, install: "
        "kubectl apply -k DIR).",
    )
    return files


def write_base(files: dict[str, str], directory: Path) -> list[Path]:
    """Write `files` under `directory` (creating folders); return the paths written."""
    written = []
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
