"""The real kubectl against `engine apiserver`: discovery, apply, validation, get, patch, wait."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.e2e.kubectl import FIXTURES, Kubectl, apiserver_process, needs_kubectl

pytestmark = [pytest.mark.e2e, needs_kubectl]


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    """One server for the module, with the Site CRD and the two fixture Sites applied."""
    with apiserver_process(tmp_path_factory.mktemp("apiserver")) as kubectl:
        kubectl.ok("apply", "-f", str(FIXTURES / "site-crd.yaml"))
        kubectl.ok("wait", "--for=condition=Established", "crd/sites.example.dev", "--timeout=10s")
        kubectl.ok("apply", "-f", str(FIXTURES / "sites.yaml"))
        yield kubectl


def jsonpath(kubectl: Kubectl, resource: str, path: str) -> str:
    return kubectl.ok("get", resource, "-o", f"jsonpath={path}")


def test_api_resources_lists_built_ins_and_the_applied_crd(kubectl: Kubectl) -> None:
    output = kubectl.ok("api-resources")
    rows = {line.split()[0]: line.split() for line in output.splitlines()[1:]}
    assert "configmaps" in rows
    assert rows["sites"][1:] == ["st", "example.dev/v1", "true", "Site"]


def test_apply_fills_in_schema_defaults(kubectl: Kubectl) -> None:
    assert jsonpath(kubectl, "site/alpha", "{.spec.replicas},{.spec.tier}") == "2,standard"
    assert jsonpath(kubectl, "site/beta", "{.spec.replicas},{.spec.tier}") == "4,premium"


def test_apply_again_without_changes_reports_unchanged(kubectl: Kubectl) -> None:
    output = kubectl.ok("apply", "-f", str(FIXTURES / "sites.yaml"))
    assert output.split("\n")[:2] == [
        "site.example.dev/alpha unchanged",
        "site.example.dev/beta unchanged",
    ]


def test_an_unknown_field_is_refused(kubectl: Kubectl) -> None:
    result = kubectl.run("apply", "-f", str(FIXTURES / "site-unknown-field.yaml"))
    assert result.code != 0
    assert 'unknown field "spec.colour"' in result.stderr, result.describe()
    assert kubectl.run("get", "site/gamma").code != 0


def test_a_schema_invalid_resource_is_refused_with_the_422_message(kubectl: Kubectl) -> None:
    result = kubectl.run("apply", "-f", str(FIXTURES / "site-invalid.yaml"))
    assert result.code != 0
    assert 'The Site "delta" is invalid' in result.stderr, result.describe()
    assert "spec.replicas" in result.stderr
    assert "less than or equal to 10" in result.stderr


def test_get_prints_the_crd_printer_columns(kubectl: Kubectl) -> None:
    lines = kubectl.ok("get", "sites").splitlines()
    assert lines[0].split() == ["NAME", "DOMAIN", "REPLICAS", "PHASE", "AGE"]
    alpha = next(line.split() for line in lines[1:] if line.startswith("alpha"))
    assert alpha[:3] == ["alpha", "alpha.example.com", "2"]


def test_get_watch_prints_a_row_for_a_change(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-f", "-", stdin=site_manifest("watched", "watched.example.com"))
    watch = kubectl.start("get", "sites", "-w", "--request-timeout=10s")
    assert watch.stdout is not None
    try:
        rows = [watch.stdout.readline().split()]  # the header
        while rows[-1] and rows[-1][0] != "watched":  # the listed rows, before any change
            rows.append(watch.stdout.readline().split())
        assert rows[-1][:3] == ["watched", "watched.example.com", "2"], rows
        kubectl.ok("patch", "site/watched", "--type=merge", "-p", '{"spec":{"replicas":7}}')
        row = watch.stdout.readline().split()  # the watch event, while kubectl keeps running
        assert row[:3] == ["watched", "watched.example.com", "7"], row
    finally:
        watch.kill()
        watch.communicate(timeout=10)


def test_patch_merge_changes_the_spec(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-f", "-", stdin=site_manifest("merged", "merged.example.com"))
    output = kubectl.ok("patch", "site/merged", "--type=merge", "-p", '{"spec":{"replicas":5}}')
    assert output.strip() == "site.example.dev/merged patched"
    assert jsonpath(kubectl, "site/merged", "{.spec.replicas},{.spec.tier}") == "5,standard"


def test_patch_status_subresource_changes_only_the_status(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-f", "-", stdin=site_manifest("statused", "statused.example.com"))
    generation = jsonpath(kubectl, "site/statused", "{.metadata.generation}")
    body = '{"status":{"phase":"Serving"},"spec":{"replicas":9}}'
    kubectl.ok("patch", "site/statused", "--subresource=status", "--type=merge", "-p", body)
    assert jsonpath(kubectl, "site/statused", "{.status.phase},{.spec.replicas}") == "Serving,2"
    assert jsonpath(kubectl, "site/statused", "{.metadata.generation}") == generation


def test_wait_for_jsonpath_returns_once_the_status_matches(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-f", "-", stdin=site_manifest("waited", "waited.example.com"))
    waiter = kubectl.start(
        "wait", "site/waited", "--for=jsonpath={.status.phase}=Ready", "--timeout=15s"
    )
    try:
        time.sleep(1.0)
        assert waiter.poll() is None, "wait returned before the status changed"
        body = '{"status":{"phase":"Ready"}}'
        kubectl.ok("patch", "site/waited", "--subresource=status", "--type=merge", "-p", body)
        stdout, stderr = waiter.communicate(timeout=15)
    finally:
        waiter.kill()
    assert waiter.returncode == 0, stdout + stderr
    assert stdout.strip() == "site.example.dev/waited condition met"


def test_create_of_an_existing_name_is_already_exists(kubectl: Kubectl) -> None:
    result = kubectl.run("create", "-f", str(FIXTURES / "sites.yaml"))
    assert result.code != 0
    assert "(AlreadyExists)" in result.stderr, result.describe()
    assert 'sites.example.dev "alpha" already exists' in result.stderr


def test_create_configmap_gets_415_naming_the_apply_alternative(kubectl: Kubectl) -> None:
    result = kubectl.run("create", "configmap", "x", "--from-literal=a=b")
    assert result.code != 0
    assert "--dry-run=client -o yaml | kubectl apply -f -" in result.stderr, result.describe()
    manifest = kubectl.ok(
        "create", "configmap", "x", "--from-literal=a=b", "--dry-run=client", "-o", "yaml"
    )
    kubectl.ok("apply", "-f", "-", stdin=manifest)
    assert json.loads(kubectl.ok("get", "configmap/x", "-o", "json"))["data"] == {"a": "b"}


def site_manifest(name: str, domain: str) -> str:
    return f"""
apiVersion: example.dev/v1
kind: Site
metadata:
  name: {name}
spec:
  domain: {domain}
"""
