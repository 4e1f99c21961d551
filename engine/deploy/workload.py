"""The objects that run an operator's engine: its namespace (restricted Pod Security), a
one-replica Recreate Deployment hardened to the restricted standard, the claim holding
the journal, and the Service of /metrics on the health port."""

from __future__ import annotations

from typing import Any

Manifest = dict[str, Any]

STATE_DIR = "/var/lib/engine"
"""The image's state dir (Dockerfile: ENGINE_STATE_DIR); the claim is mounted over it."""
HEALTH_PORT = 8081
UID = 65532


def namespace(name: str) -> Manifest:
    """The engine's namespace, enforcing the restricted Pod Security Standard."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/warn": "restricted",
            },
        },
    }


def state_claim(*, name: str) -> Manifest:
    """`<name>-state`: ReadWriteOnce, one pod at a time."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": f"{name}-state"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def metrics_service(*, name: str) -> Manifest:
    """`<name>-metrics`: the health port, where /metrics is served."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{name}-metrics", "labels": {"app.kubernetes.io/name": name}},
        "spec": {
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": "metrics", "port": HEALTH_PORT, "targetPort": "health"}],
        },
    }


def deployment(*, name: str, image: str, operator_ref: str, lease: str) -> Manifest:
    """The engine's Deployment running `engine run --in-cluster --operator operator_ref`."""
    labels = {"app.kubernetes.io/name": name}
    probe = {"httpGet": {"path": "/healthz", "port": "health"}}
    container: Manifest = {
        "name": "engine",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["run", "--in-cluster", "--plain", "--operator", operator_ref],
        "env": [
            {"name": "ENGINE_STATE_DIR", "value": STATE_DIR},
            {"name": "ENGINE_HEALTH_HOST", "value": "0.0.0.0"},
            {"name": "ENGINE_HEALTH_PORT", "value": str(HEALTH_PORT)},
            {"name": "ENGINE_LOG_FORMAT", "value": "json"},
            {"name": "ENGINE_LEADER_ELECTION", "value": "true"},
            {"name": "ENGINE_LEASE_NAME", "value": lease},
            {
                "name": "ENGINE_LEASE_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
        ],
        "ports": [{"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
        "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 60},
        "livenessProbe": {**probe, "periodSeconds": 10, "timeoutSeconds": 2,
                          "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "health"},
                           "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 3},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"cpu": "1", "memory": "512Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "state", "mountPath": STATE_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }  # fmt: skip
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": True,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": UID,
                        "runAsGroup": UID,
                        "fsGroup": UID,
                        "fsGroupChangePolicy": "OnRootMismatch",
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "state", "persistentVolumeClaim": {"claimName": f"{name}-state"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }
