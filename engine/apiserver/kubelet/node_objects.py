"""The Node objects the simulated kubelet registers: Ready, with capacity and addresses."""

from __future__ import annotations

from typing import Any

KUBELET_VERSION = "v1.32.0"


def node_name(index: int) -> str:
    """The name of the simulated node number `index` (from 0)."""
    return f"sim-node-{index + 1}"


def node_ip(index: int) -> str:
    """The InternalIP of node number `index`."""
    return f"172.18.0.{index + 2}"


def node_body(index: int, *, now: str) -> dict[str, Any]:
    """A Node as a kubelet registers it, Ready."""
    name = node_name(index)
    healthy = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID"),
        ("Ready", "True", "KubeletReady"),
    ]
    capacity = {"cpu": "8", "memory": "32Gi", "pods": "1000", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "simulated",
            },
        },
        "spec": {},
        "status": {
            "conditions": [
                {
                    "type": kind,
                    "status": status,
                    "reason": reason,
                    "message": f"kubelet {reason}",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
                for kind, status, reason in healthy
            ],
            "addresses": [
                {"type": "InternalIP", "address": node_ip(index)},
                {"type": "Hostname", "address": name},
            ],
            "capacity": capacity,
            "allocatable": capacity,
            "nodeInfo": {
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
                "containerRuntimeVersion": "simulated://1.0",
                "osImage": "engine simulated node",
                "kernelVersion": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        },
    }
