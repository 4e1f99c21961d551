"""An operator's kustomize base as files (relative path → YAML text): the namespace, the
CRD, the RBAC, the state claim, the Deployment and the metrics Service, the webhooks'
Service, configurations and certificate when the operator declares webhooks, and the
kustomization that ties them (`kubectl apply -k DIR`). Deterministic: the same operator
and options give the same bytes, so a checked-in base can be compared with a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from engine.deploy import cluster_role as rbac
from engine.deploy import webhook, workload

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
    webhooks: webhook.WebhookOptions = field(default_factory=webhook.WebhookOptions)

    @property
    def lease(self) -> str:
        return f"{self.name}-leader"


def to_yaml(manifest: dict[str, Any], *, comment: str = "") -> str:
    """One manifest as YAML, after `comment` as `#` lines (block style, keys in order)."""
    lines = "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines())
    return lines + yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False)


def crd_yaml(operator: Operator, *, operator_ref: str, options: BaseOptions | None = None) -> str:
    """The operator's CRD, as `engine crd` prints it and the base holds it (with served
    versions, converting through the webhook Service of `options`, default names)."""
    comment = (
        f"The {operator.resource.kind} CRD, rendered from the operator {operator_ref}\n"
        f"(regenerate: engine crd --operator {operator_ref})."
    )
    chosen = options or BaseOptions(operator_ref=operator_ref, image="")
    manifest = webhook.crd(
        operator, name=chosen.name, namespace=chosen.namespace, options=chosen.webhooks
    )
    return to_yaml(manifest, comment=comment)


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
        crd_file: crd_yaml(operator, operator_ref=options.operator_ref, options=options),
        "rbac/service_account.yaml": to_yaml(rbac.service_account(name=name)),
        "rbac/cluster_role.yaml": to_yaml(
            _cluster_role(operator, options),
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
            _deployment(operator, options, image_name),
            comment="One replica, Recreate (two pods must never share the journal), leader\n"
            "election on as a guard; restricted Pod Security: non-root, read-only root\n"
            "filesystem, no capabilities, seccomp RuntimeDefault.",
        ),
        "manager/metrics_service.yaml": to_yaml(
            workload.metrics_service(name=name),
            comment="/metrics (Prometheus text format) on the engine's health port.",
        ),
    }
    if operator.serves_webhooks:
        files.update(_webhook_files(operator, options))
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


def _cluster_role(operator: Operator, options: BaseOptions) -> dict[str, Any]:
    role = rbac.cluster_role(operator, name=options.name)
    if operator.serves_webhooks:
        role["rules"] += webhook.rbac_rules(operator, options=options.webhooks)
    return role


def _deployment(operator: Operator, options: BaseOptions, image: str) -> dict[str, Any]:
    manifest = workload.deployment(
        name=options.name, image=image, operator_ref=options.operator_ref, lease=options.lease
    )
    if operator.serves_webhooks:
        manifest = webhook.with_webhooks(manifest, name=options.name, options=options.webhooks)
    return manifest


def _webhook_files(operator: Operator, options: BaseOptions) -> dict[str, str]:
    name, namespace, chosen = options.name, options.namespace, options.webhooks
    how = (
        "cert-manager's CA injector fills caBundle (cert-manager.io/inject-ca-from)"
        if chosen.cert_manager
        else "the engine applies it at start with its own CA as caBundle"
    )
    files = {
        "webhook/service.yaml": to_yaml(
            webhook.service(name=name),
            comment="The admission and conversion webhooks, served by the engine over HTTPS.",
        )
    }
    for manifest in webhook.configurations(
        operator, name=name, namespace=namespace, options=chosen
    ):
        files[f"webhook/{manifest['kind'].lower()}.yaml"] = to_yaml(
            manifest, comment=f"{manifest['kind']} for the operator's resource; {how}."
        )
    if chosen.cert_manager:
        files["webhook/issuer.yaml"] = to_yaml(webhook.issuer(name=name))
        files["webhook/certificate.yaml"] = to_yaml(
            webhook.certificate(name=name, namespace=namespace),
            comment="The webhook Service's serving certificate; its Secret is mounted into "
            "the engine,\nwhich serves a renewed one without a restart.",
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
