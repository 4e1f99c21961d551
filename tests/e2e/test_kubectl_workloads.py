"""The real kubectl, with its default validation, against `engine apiserver` running its
workload controllers and simulated kubelet: ReplicaSets, Deployments, Jobs, StatefulSets,
garbage collection of Pods, namespace deletion. One server for the module; each test
works in its own namespace."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.kubectl import Kubectl, apiserver_process, needs_kubectl

pytestmark = [pytest.mark.e2e, needs_kubectl]
FAST_KUBELET = ("--pod-start-delay", "0.02", "--pod-run-seconds", "0.05", "--pod-grace-cap", "0.05")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    with apiserver_process(tmp_path_factory.mktemp("apiserver"), *FAST_KUBELET) as kubectl:
        yield kubectl


@pytest.fixture
def kubectl(server: Kubectl, request: pytest.FixtureRequest) -> Kubectl:
    """kubectl with a fresh namespace of the test's own (the kubeconfig's default stays)."""
    raw = request.node.name.removeprefix("test_").lower()
    namespace = re.sub(r"[^a-z0-9]+", "-", raw)[-60:].strip("-")
    server.ok("apply", "-f", "-", stdin=manifest("v1", "Namespace", namespace, namespaced=False))
    return NamespacedKubectl(server.kubeconfig, server.cache_dir, namespace=namespace)


class NamespacedKubectl(Kubectl):
    """kubectl bound to one namespace too."""

    def __init__(self, kubeconfig: Any, cache_dir: Any, *, namespace: str) -> None:
        super().__init__(kubeconfig, cache_dir)
        object.__setattr__(self, "namespace", namespace)

    def command(self, *args: str) -> list[str]:
        return [*super().command(*args), "--namespace", self.namespace]  # type: ignore[attr-defined]


def manifest(
    api_version: str, kind: str, name: str, *, namespaced: bool = True, **fields: Any
) -> str:
    body: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}
    body.update(fields)
    return json.dumps(body)


def container(image: str = "nginx:1.27") -> dict[str, Any]:
    return {"name": "app", "image": image}


def pod(name: str, *, owners: list[dict[str, Any]] | None = None, **meta: Any) -> str:
    metadata: dict[str, Any] = {"name": name, "labels": {"role": "gc"}, **meta}
    if owners:
        metadata["ownerReferences"] = owners
    return json.dumps(
        {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
         "spec": {"containers": [container()]}}
    )  # fmt: skip


def replica_set(name: str, replicas: int) -> str:
    labels = {"app": name}
    return manifest(
        "apps/v1", "ReplicaSet", name,
        spec={"replicas": replicas, "selector": {"matchLabels": labels},
              "template": {"metadata": {"labels": labels}, "spec": {"containers": [container()]}}},
    )  # fmt: skip


def deployment(name: str, replicas: int, image: str) -> str:
    labels = {"app": name}
    return manifest(
        "apps/v1", "Deployment", name,
        spec={"replicas": replicas, "selector": {"matchLabels": labels},
              "template": {"metadata": {"labels": labels},
                           "spec": {"containers": [container(image)]}}},
    )  # fmt: skip


def items(kubectl: Kubectl, *args: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(kubectl.ok("get", *args, "-o", "json"))["items"]
    return found


def eventually(check: Callable[[], Any], *, timeout: float = 15.0) -> Any:
    """Poll `check` until it returns something truthy (kubectl, so no tight loop)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.1)


def table_rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()[1:]]


def test_replicaset_runs_pods_replaces_a_deleted_one_and_scales(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-f", "-", stdin=replica_set("web", 3))
    kubectl.ok("wait", "--for=jsonpath={.status.readyReplicas}=3", "rs/web", "--timeout=15s")
    rs_uid = kubectl.ok("get", "rs/web", "-o", "jsonpath={.metadata.uid}")
    pods = items(kubectl, "pods", "-l", "app=web")
    assert len(pods) == 3
    for found in pods:
        assert found["metadata"]["name"].startswith("web-")
        assert len(found["metadata"]["name"]) == len("web-") + 5
        assert found["metadata"]["ownerReferences"] == [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs_uid,
             "controller": True, "blockOwnerDeletion": True}
        ]  # fmt: skip
        assert found["status"]["phase"] == "Running"
        assert found["spec"]["nodeName"]
    assert table_rows(kubectl.ok("get", "rs", "web"))[0][:4] == ["web", "3", "3", "3"]
    pod_rows = table_rows(kubectl.ok("get", "pods", "-l", "app=web"))
    assert {tuple(row[1:4]) for row in pod_rows} == {("1/1", "Running", "0")}
    assert "SuccessfulCreate" in kubectl.ok("describe", "rs", "web")

    victim = pods[0]["metadata"]["name"]
    kubectl.ok("delete", "pod", victim)

    def replaced() -> bool:
        names = {p["metadata"]["name"] for p in items(kubectl, "pods", "-l", "app=web")}
        return len(names) == 3 and victim not in names

    eventually(replaced)
    kubectl.ok("wait", "--for=jsonpath={.status.readyReplicas}=3", "rs/web", "--timeout=15s")
    assert "scaled" in kubectl.ok("scale", "rs/web", "--replicas=1")
    eventually(lambda: len(items(kubectl, "pods", "-l", "app=web")) == 1)
    kubectl.ok("wait", "--for=jsonpath={.status.replicas}=1", "rs/web", "--timeout=15s")


def _uid(kubectl: Kubectl, ref: str) -> str:
    return kubectl.ok("get", ref, "-o", "jsonpath={.metadata.uid}")


def _owner_ref(name: str, uid: str, *, block: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}
    if block:
        ref["blockOwnerDeletion"] = True
    return ref


def _exists(kubectl: Kubectl, ref: str) -> bool:
    return kubectl.run("get", ref).code == 0


def test_pod_owned_by_pod_is_kept_and_one_with_a_missing_owner_is_collected(
    kubectl: Kubectl,
) -> None:
    kubectl.ok("apply", "-f", "-", stdin=pod("owner"))
    uid = _uid(kubectl, "pod/owner")
    kubectl.ok("apply", "-f", "-", stdin=pod("kept", owners=[_owner_ref("owner", uid)]))
    missing = "00000000-0000-0000-0000-000000000000"
    kubectl.ok("apply", "-f", "-", stdin=pod("dangling", owners=[_owner_ref("ghost", missing)]))
    eventually(lambda: not _exists(kubectl, "pod/dangling"))
    time.sleep(0.3)  # the collector has had its turn with the kept one too
    assert _exists(kubectl, "pod/kept")
    kubectl.ok("delete", "pod", "kept")
    assert _exists(kubectl, "pod/owner")


def test_background_delete_of_the_owner_collects_its_dependent(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-f", "-", stdin=pod("owner"))
    uid = _uid(kubectl, "pod/owner")
    kubectl.ok("apply", "-f", "-", stdin=pod("dependent", owners=[_owner_ref("owner", uid)]))
    kubectl.ok("delete", "pod", "owner", "--cascade=background")
    kubectl.ok("wait", "--for=delete", "pod/dependent", "--timeout=15s")


def test_foreground_delete_waits_for_a_blocking_dependent(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-f", "-", stdin=pod("owner"))
    uid = _uid(kubectl, "pod/owner")
    blocking = pod("blocker", owners=[_owner_ref("owner", uid, block=True)],
                   finalizers=["example.com/hold"])  # fmt: skip
    kubectl.ok("apply", "-f", "-", stdin=blocking)
    kubectl.ok("delete", "pod", "owner", "--cascade=foreground", "--wait=false")
    eventually(lambda: _exists(kubectl, "pod/blocker") and kubectl.ok(
        "get", "pod/blocker", "-o", "jsonpath={.metadata.deletionTimestamp}"))  # fmt: skip
    time.sleep(0.3)
    owner = json.loads(kubectl.ok("get", "pod/owner", "-o", "json"))
    assert "foregroundDeletion" in owner["metadata"]["finalizers"]
    assert table_rows(kubectl.ok("get", "pod", "owner"))[0][2] == "Terminating"
    kubectl.ok("patch", "pod/blocker", "--type=json",
               "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')  # fmt: skip
    kubectl.ok("wait", "--for=delete", "pod/owner", "pod/blocker", "--timeout=15s")


def test_orphan_delete_keeps_the_dependent_without_its_owner_reference(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-f", "-", stdin=pod("owner"))
    uid = _uid(kubectl, "pod/owner")
    kubectl.ok("apply", "-f", "-", stdin=pod("dependent", owners=[_owner_ref("owner", uid)]))
    kubectl.ok("delete", "pod", "owner", "--cascade=orphan")
    kubectl.ok("wait", "--for=delete", "pod/owner", "--timeout=15s")
    left = json.loads(kubectl.ok("get", "pod/dependent", "-o", "json"))
    assert "ownerReferences" not in left["metadata"]


def test_deployment_rolls_out_updates_and_its_deletion_collects_everything(
    kubectl: Kubectl,
) -> None:
    kubectl.ok("apply", "-f", "-", stdin=deployment("api", 4, "nginx:1.27"))
    assert "successfully rolled out" in kubectl.ok("rollout", "status", "deploy/api",
                                                   "--timeout=20s")  # fmt: skip
    rows = table_rows(kubectl.ok("get", "deploy", "api"))
    assert rows[0][:4] == ["api", "4/4", "4", "4"]
    (first,) = items(kubectl, "rs")
    assert first["metadata"]["labels"]["pod-template-hash"]
    assert first["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    kubectl.ok("apply", "-f", "-", stdin=deployment("api", 4, "nginx:1.28"))
    assert "successfully rolled out" in kubectl.ok("rollout", "status", "deploy/api",
                                                   "--timeout=20s")  # fmt: skip
    sets = {rs["metadata"]["name"]: rs["spec"]["replicas"] for rs in items(kubectl, "rs")}
    assert sets[first["metadata"]["name"]] == 0
    assert sorted(sets.values()) == [0, 4]
    pods = items(kubectl, "pods", "-l", "app=api")
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.28"}
    assert "ScalingReplicaSet" in kubectl.ok("describe", "deploy", "api")
    kubectl.ok("rollout", "undo", "deploy/api")
    kubectl.ok("rollout", "status", "deploy/api", "--timeout=20s")
    undone = {rs["metadata"]["name"]: rs for rs in items(kubectl, "rs")}
    back = undone[first["metadata"]["name"]]
    assert back["spec"]["replicas"] == 4
    assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    kubectl.ok("delete", "deploy", "api")
    eventually(lambda: not items(kubectl, "rs") and not items(kubectl, "pods"))


def test_job_runs_to_completion(kubectl: Kubectl) -> None:
    job = manifest(
        "batch/v1", "Job", "batch",
        spec={"completions": 2, "template": {"spec": {"restartPolicy": "Never",
                                                      "containers": [container()]}}},
    )  # fmt: skip
    kubectl.ok("apply", "-f", "-", stdin=job)
    kubectl.ok("wait", "--for=condition=complete", "job/batch", "--timeout=20s")
    row = table_rows(kubectl.ok("get", "job", "batch"))[0]
    assert row[1:3] == ["Complete", "2/2"]
    phases = [p["status"]["phase"] for p in items(kubectl, "pods", "-l", "job-name=batch")]
    assert phases == ["Succeeded", "Succeeded"]


def test_job_with_failing_pods_fails_after_its_backoff_limit(kubectl: Kubectl) -> None:
    job = manifest(
        "batch/v1", "Job", "doomed",
        spec={"backoffLimit": 1, "template": {
            "metadata": {"annotations": {"kubelet.engine.dev/outcome": "fail"}},
            "spec": {"restartPolicy": "Never", "containers": [container()]}}},
    )  # fmt: skip
    kubectl.ok("apply", "-f", "-", stdin=job)
    kubectl.ok("wait", "--for=condition=failed", "job/doomed", "--timeout=20s")
    assert len(items(kubectl, "pods", "-l", "job-name=doomed")) == 2


def test_statefulset_creates_ordinal_pods_in_order(kubectl: Kubectl) -> None:
    labels = {"app": "db"}
    sts = manifest(
        "apps/v1", "StatefulSet", "db",
        spec={"replicas": 3, "serviceName": "db", "selector": {"matchLabels": labels},
              "template": {"metadata": {"labels": labels}, "spec": {"containers": [container()]}}},
    )  # fmt: skip
    kubectl.ok("apply", "-f", "-", stdin=sts)
    kubectl.ok("wait", "--for=jsonpath={.status.readyReplicas}=3", "sts/db", "--timeout=20s")
    pods = sorted(items(kubectl, "pods", "-l", "app=db"), key=lambda p: p["metadata"]["name"])
    assert [p["metadata"]["name"] for p in pods] == ["db-0", "db-1", "db-2"]
    created = [p["status"]["startTime"] for p in pods]
    assert created == sorted(created)
    kubectl.ok("scale", "sts/db", "--replicas=1")
    eventually(lambda: [p["metadata"]["name"] for p in items(kubectl, "pods", "-l", "app=db")]
               == ["db-0"])  # fmt: skip


@pytest.mark.parametrize(
    ("outcome", "status", "ready"),
    [
        pytest.param("crash-loop", "CrashLoopBackOff", "0/1", id="crash-loop"),
        pytest.param("never-ready", "Running", "0/1", id="never-ready"),
        pytest.param("fail", "Error", "0/1", id="fail"),
    ],
)
def test_kubelet_annotation_sets_the_pod_outcome(
    kubectl: Kubectl, outcome: str, status: str, ready: str
) -> None:
    annotations = {"kubelet.engine.dev/outcome": outcome}
    kubectl.ok("apply", "-f", "-", stdin=pod("sim", annotations=annotations))

    def shown() -> bool:
        row = table_rows(kubectl.ok("get", "pod", "sim"))[0]
        return row[1:3] == [ready, status]

    eventually(shown)


def test_unknown_field_in_a_pod_is_refused_under_default_validation(kubectl: Kubectl) -> None:
    body = json.loads(pod("typo"))
    body["spec"]["containers"][0]["colour"] = "red"
    result = kubectl.run("apply", "-f", "-", stdin=json.dumps(body))
    assert result.code != 0
    assert 'strict decoding error: unknown field "spec.containers[0].colour"' in result.stderr
    assert not _exists(kubectl, "pod/typo")


def test_namespace_deletion_removes_everything_in_it(server: Kubectl) -> None:
    server.ok("apply", "-f", "-", stdin=manifest("v1", "Namespace", "doomed-ns", namespaced=False))
    inside = NamespacedKubectl(server.kubeconfig, server.cache_dir, namespace="doomed-ns")
    inside.ok("apply", "-f", "-", stdin=replica_set("web", 2))
    inside.ok("apply", "-f", "-", stdin=manifest("v1", "ConfigMap", "settings", data={"a": "b"}))
    inside.ok("wait", "--for=jsonpath={.status.readyReplicas}=2", "rs/web", "--timeout=15s")
    namespace = json.loads(server.ok("get", "ns", "doomed-ns", "-o", "json"))
    assert namespace["spec"]["finalizers"] == ["kubernetes"]
    server.ok("delete", "ns", "doomed-ns", "--timeout=20s")
    assert server.run("get", "ns", "doomed-ns").code != 0
    left = json.loads(server.ok("get", "pods,rs,configmaps", "-A", "-o", "json"))["items"]
    assert [i for i in left if i["metadata"]["namespace"] == "doomed-ns"] == []


def test_nodes_are_listed_ready(server: Kubectl) -> None:
    rows = table_rows(server.ok("get", "nodes"))
    assert rows
    assert all(row[1] == "Ready" and row[4] == "v1.32.0" for row in rows)
