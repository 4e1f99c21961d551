"""The example operator's custom resource, `Site` (example.dev/v1): its schema, printer
columns and the CRD manifest rendered from them (config/crd/site.yaml holds the same CRD,
written by `engine manifests`).
"""

from __future__ import annotations

from typing import Any

import yaml

from engine.runtime.reconcile.operator import ChildKind, CustomResource

DOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$"
TIERS = ("basic", "standard", "premium")
MAX_REPLICAS = 10

_CONDITION: dict[str, Any] = {
    "type": "object",
    "required": ["type", "status"],
    "properties": {
        "type": {"type": "string"},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "reason": {"type": "string"},
        "message": {"type": "string"},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "observedGeneration": {"type": "integer"},
    },
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "spec": {
            "type": "object",
            "required": ["domain"],
            "properties": {
                "domain": {
                    "type": "string",
                    "maxLength": 253,
                    "pattern": DOMAIN_PATTERN,
                    "description": "The site's DNS name, registered with the registry.",
                },
                "replicas": {
                    "type": "integer",
                    "default": 1,
                    "minimum": 0,
                    "maximum": MAX_REPLICAS,
                    "description": "Serving replicas (the basic tier allows at most 3).",
                },
                "message": {
                    "type": "string",
                    "default": "hello",
                    "maxLength": 1024,
                    "description": "The greeting the site serves.",
                },
                "tier": {
                    "type": "string",
                    "enum": list(TIERS),
                    "default": "standard",
                    "description": "Service tier.",
                },
                "dependsOn": {
                    "type": "array",
                    "items": {"type": "string"},
                    "default": [],
                    "description": "Names of Sites in the same namespace this one needs.",
                },
                "image": {
                    "type": "string",
                    "maxLength": 512,
                    "description": (
                        "Container image serving the site: when set, the Site runs a "
                        "Deployment of spec.replicas pods and is Ready once it is available."
                    ),
                },
                "podAnnotations": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Annotations for the pods of the site's Deployment.",
                },
                "password": {
                    "type": "string",
                    "description": "Admin password; secret: never journaled or logged.",
                },
            },
        },
        "status": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {
                "phase": {"type": "string"},
                "observedGeneration": {"type": "integer"},
                "reason": {"type": "string"},
                "conditions": {"type": "array", "items": _CONDITION},
            },
        },
    },
}

SITE = CustomResource(
    group="example.dev",
    version="v1",
    kind="Site",
    plural="sites",
    singular="site",
    schema=SCHEMA,
    short_names=("st",),
    printer_columns=(
        {"name": "State", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Domain", "type": "string", "jsonPath": ".spec.domain"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ),
)

CONFIG_MAP = ChildKind(group="", version="v1", kind="ConfigMap", plural="configmaps")
SERVICE = ChildKind(group="", version="v1", kind="Service", plural="services")
DEPLOYMENT = ChildKind(group="apps", version="v1", kind="Deployment", plural="deployments")


def render_crd_yaml() -> str:
    """The Site CRD as YAML: the same object config/crd/site.yaml holds (that file is
    written by `engine manifests`, with its own header)."""
    header = (
        "# The example operator's CRD, rendered from engine/example/site_resource.py\n"
        "# (config/crd/site.yaml is written by: engine manifests --image engine:0.1.0).\n"
    )
    return header + yaml.safe_dump(SITE.crd(), sort_keys=False, default_flow_style=False)


if __name__ == "__main__":
    print(render_crd_yaml(), end="")
