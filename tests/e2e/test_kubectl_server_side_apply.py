"""Server-side apply with the real kubectl: a field taken out of a manager's applied
configuration goes from the object, unless another applier still owns it; fields set by
a plain update are kept."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.kubectl import Kubectl, apiserver_process, needs_kubectl

pytestmark = [pytest.mark.e2e, needs_kubectl]

CONFIG = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: ssa
  namespace: default
  labels: {{{labels}}}
data: {{{data}}}
"""


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    with apiserver_process(tmp_path_factory.mktemp("apiserver")) as kubectl:
        yield kubectl


def apply(kubectl: Kubectl, manager: str, *, labels: str, data: str) -> dict[str, object]:
    manifest = CONFIG.format(labels=labels, data=data)
    kubectl.ok("apply", "--server-side", f"--field-manager={manager}", "-f", "-", stdin=manifest)
    shown = kubectl.ok("get", "configmap/ssa", "-o", "json", "--show-managed-fields")
    live: dict[str, object] = json.loads(shown)
    return live


def test_a_field_left_out_of_the_next_apply_is_removed(kubectl: Kubectl) -> None:
    first = apply(kubectl, "op", labels="app: web, tier: front", data="a: '1', b: '2'")
    assert first["data"] == {"a": "1", "b": "2"}
    kubectl.ok("label", "configmap/ssa", "by-hand=yes")  # an update, not an apply

    second = apply(kubectl, "op", labels="app: web", data="a: '1'")
    assert second["data"] == {"a": "1"}
    labels = second["metadata"]["labels"]  # type: ignore[index]
    assert labels == {"app": "web", "by-hand": "yes"}
    [entry] = [
        e
        for e in second["metadata"]["managedFields"]  # type: ignore[index]
        if e["manager"] == "op" and e["operation"] == "Apply"
    ]
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:data": {"f:a": {}},
    }


def test_a_field_another_applier_owns_is_kept(kubectl: Kubectl) -> None:
    apply(kubectl, "op", labels="app: web", data="a: '1', shared: 'x'")
    apply(kubectl, "other", labels="team: blue", data="shared: 'x'")
    live = apply(kubectl, "op", labels="app: web", data="a: '1'")
    assert live["data"] == {"a": "1", "shared": "x"}
    assert live["metadata"]["labels"]["team"] == "blue"  # type: ignore[index]
