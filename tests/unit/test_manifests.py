"""The kustomize base in config/ renders with kubectl, every object validates offline
against the Kubernetes 1.31 schemas (strict), and the Deployment is what the engine needs:
one Recreate replica on a PersistentVolumeClaim, probes, limits, restricted hardening."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from engine.example.site_resource import SITE
from tests.support.manifests import (
    CONFIG,
    ROOT,
    Manifest,
    env_of,
    find,
    hardening_violations,
    needs_kubectl,
    render,
    render_with_jaeger,
)

pytestmark = needs_kubectl
KUBERNETES_VERSION = "1.31"
NAMESPACE = "engine-system"


@pytest.fixture(scope="module")
def base() -> list[Manifest]:
    return render(CONFIG)


def deployment_pod(manifests: list[Manifest]) -> dict[str, object]:
    pod: dict[str, object] = find(manifests, "Deployment", "engine")["spec"]["template"]["spec"]
    return pod


def test_the_base_renders_every_part_of_the_installation(base: list[Manifest]) -> None:
    kinds = sorted(f"{m['kind']}/{m['metadata']['name']}" for m in base)
    assert kinds == [
        "ClusterRole/engine",
        "ClusterRoleBinding/engine",
        "CustomResourceDefinition/sites.example.dev",
        "Deployment/engine",
        f"Namespace/{NAMESPACE}",
        "PersistentVolumeClaim/engine-state",
        "Role/engine-leader-election",
        "RoleBinding/engine-leader-election",
        "Service/engine-metrics",
        "ServiceAccount/engine",
    ]


def test_every_namespaced_object_lands_in_the_engine_namespace(base: list[Manifest]) -> None:
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    for manifest in base:
        namespace = manifest["metadata"].get("namespace")
        if manifest["kind"] in cluster_scoped:
            assert namespace is None, manifest["kind"]
        else:
            assert namespace == NAMESPACE, manifest["kind"]


def test_every_rendered_object_validates_strictly_against_the_kubernetes_schemas(
    base: list[Manifest], tmp_path: Path
) -> None:
    # Custom resources (the Site samples in config/samples) have no schema in
    # kubernetes-validate; they are not part of the base. The CRD object itself is.
    for manifest in [*base, *render_with_jaeger(tmp_path)]:
        validated = kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        assert validated == KUBERNETES_VERSION


def test_strict_validation_rejects_a_misspelt_field(base: list[Manifest]) -> None:
    deployment = copy.deepcopy(find(base, "Deployment", "engine"))
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_crd_installed_is_the_one_the_engine_applies_at_start(base: list[Manifest]) -> None:
    installed = find(base, "CustomResourceDefinition", SITE.crd()["metadata"]["name"])
    expected = SITE.crd()
    assert installed["spec"] == expected["spec"]
    assert installed["metadata"]["name"] == expected["metadata"]["name"]


def test_one_replica_replaced_by_recreate_with_leader_election_on(base: list[Manifest]) -> None:
    deployment = find(base, "Deployment", "engine")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    assert env["ENGINE_LEADER_ELECTION"] == "true"
    lease_namespace = next(e for e in container["env"] if e["name"] == "ENGINE_LEASE_NAMESPACE")
    assert lease_namespace["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    role = find(base, "Role", "engine-leader-election")
    assert env["ENGINE_LEASE_NAME"] in role["rules"][0]["resourceNames"]


def test_the_journal_lives_on_the_claim_mounted_at_the_state_dir(base: list[Manifest]) -> None:
    pod = find(base, "Deployment", "engine")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    state_dir = env_of(container)["ENGINE_STATE_DIR"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes[mounts[state_dir]]["persistentVolumeClaim"]["claimName"]
    pvc = find(base, "PersistentVolumeClaim", claim)
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pod["securityContext"]["fsGroup"] == container["securityContext"]["runAsGroup"]


def test_the_only_writable_paths_are_the_state_dir_and_tmp(base: list[Manifest]) -> None:
    [container] = deployment_pod(base)["containers"]  # type: ignore[misc]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    writable = sorted(m["mountPath"] for m in container["volumeMounts"])
    assert writable == ["/tmp", "/var/lib/engine"]
    assert env_of(container)["ENGINE_STATE_DIR"] == "/var/lib/engine"


def test_the_state_dir_matches_the_image(base: list[Manifest]) -> None:
    [container] = deployment_pod(base)["containers"]  # type: ignore[misc]
    dockerfile = (ROOT / "Dockerfile").read_text()
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    match = re.search(r"ENGINE_STATE_DIR=(\S+)", final_stage)
    assert match is not None
    assert match.group(1) == env_of(container)["ENGINE_STATE_DIR"]


def test_probes_resources_and_the_metrics_service_use_the_health_port(
    base: list[Manifest],
) -> None:
    pod = deployment_pod(base)
    [container] = pod["containers"]  # type: ignore[misc]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert str(ports["health"]) == env_of(container)["ENGINE_HEALTH_PORT"]
    assert env_of(container)["ENGINE_HEALTH_HOST"] == "0.0.0.0"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    service = find(base, "Service", "engine-metrics")
    labels = find(base, "Deployment", "engine")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["health"]


def test_the_image_is_pinned_and_runs_the_in_cluster_command(base: list[Manifest]) -> None:
    [container] = deployment_pod(base)["containers"]  # type: ignore[misc]
    name, _, tag = container["image"].rpartition(":")
    assert name == "engine"
    assert tag
    assert tag != "latest"
    assert container["args"][:2] == ["run", "--in-cluster"]
    assert "command" not in container  # the image's ENTRYPOINT ["engine"]


def test_the_pod_meets_the_restricted_pod_security_standard(base: list[Manifest]) -> None:
    assert hardening_violations(deployment_pod(base)) == []
    namespace = find(base, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_hardening_check_names_what_a_weak_pod_gets_wrong() -> None:
    pod = {
        "hostNetwork": True,
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        "containers": [
            {
                "name": "weak",
                "securityContext": {"runAsUser": 0, "capabilities": {"add": ["NET_ADMIN"]}},
                "ports": [{"containerPort": 80, "hostPort": 80}],
            }
        ],
    }
    problems = hardening_violations(pod)
    assert problems == [
        "pod sets hostNetwork",
        "volume root is a hostPath",
        "weak: runAsNonRoot is not true",
        "weak: runAsUser is unset or 0",
        "weak: allowPrivilegeEscalation is not false",
        "weak: readOnlyRootFilesystem is not true",
        "weak: capabilities do not drop ALL",
        "weak: adds capabilities ['NET_ADMIN']",
        "weak: seccompProfile is not RuntimeDefault",
        "weak: hostPort 80",
    ]


def test_the_jaeger_overlay_adds_the_component_and_points_the_engine_at_it(
    tmp_path: Path,
) -> None:
    manifests = render_with_jaeger(tmp_path)
    jaeger = find(manifests, "Deployment", "jaeger")
    assert jaeger["metadata"]["namespace"] == NAMESPACE
    assert hardening_violations(jaeger["spec"]["template"]["spec"]) == []
    service = find(manifests, "Service", "jaeger")
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    [engine] = deployment_pod(manifests)["containers"]  # type: ignore[misc]
    assert env_of(engine)["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://jaeger:{ports['otlp-http']}"


def test_the_deploy_guide_shows_the_overlay_the_tests_render() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    block = re.search(r"```yaml\n(# config-with-jaeger/kustomization.yaml\n.*?)```", guide, re.S)
    assert block is not None
    shown = yaml.safe_load(block.group(1))
    assert shown["components"] == ["../config/jaeger"]
    assert shown["resources"] == ["../config"]
    from tests.support.manifests import JAEGER_OVERLAY

    assert shown["patches"] == yaml.safe_load(JAEGER_OVERLAY.format(base="../config"))["patches"]


def test_the_sharded_overlay_carries_the_same_base_as_config() -> None:
    """config/overlays/sharded/base is a copy of the base (kustomize refuses an overlay
    inside config/ that refers to config/): `engine manifests --out` writes both."""
    root = Path(__file__).resolve().parents[2] / "config"
    overlay_base = root / "overlays" / "sharded" / "base"
    files = sorted(p.relative_to(overlay_base) for p in overlay_base.rglob("*.yaml"))
    assert files, "config/overlays/sharded/base holds no manifests"
    for relative in files:
        assert (overlay_base / relative).read_text() == (root / relative).read_text(), (
            f"config/overlays/sharded/base/{relative} differs from config/{relative}: run "
            "engine manifests --image engine:0.1.0 --out config/overlays/sharded/base"
        )
