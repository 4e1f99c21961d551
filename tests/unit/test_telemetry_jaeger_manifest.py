"""The Jaeger example in config/jaeger builds as a kustomize component and is hardened."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

JAEGER = Path(__file__).resolve().parents[2] / "config" / "jaeger"


def build(tmp_path: Path) -> list[dict[str, Any]]:
    shutil.copytree(JAEGER, tmp_path / "jaeger")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "namespace: demo\ncomponents:\n  - ../jaeger\n"
    )
    out = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, check=True
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_component_builds_a_deployment_and_a_service_exposing_otlp_http(
    tmp_path: Path,
) -> None:
    docs = {doc["kind"]: doc for doc in build(tmp_path)}
    assert set(docs) == {"Deployment", "Service"}
    service_ports = {port["name"]: port["port"] for port in docs["Service"]["spec"]["ports"]}
    assert service_ports["otlp-http"] == 4318
    selector = docs["Service"]["spec"]["selector"]
    labels = docs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_the_pod_meets_the_restricted_pod_security_standard() -> None:
    deployment = yaml.safe_load((JAEGER / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
        assert ":" in container["image"]
        assert not container["image"].endswith(":latest")
        assert "limits" in container["resources"]
    assert not any(key.startswith("host") for key in pod)
