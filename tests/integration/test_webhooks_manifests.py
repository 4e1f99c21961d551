"""`engine manifests` for an operator with webhooks: the webhook Service, the
Validating/MutatingWebhookConfiguration (rules, sideEffects None, failurePolicy,
timeoutSeconds, admissionReviewVersions v1), the CRD converting through the Service,
the Deployment's webhook port and env, the RBAC that lets the engine inject its CA; and
the cert-manager variant (Issuer, Certificate, its Secret mounted, inject-ca-from). Both
render with the real kubectl and validate strictly against the Kubernetes schemas."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from engine.cli.main import cli
from engine.deploy.base import crd_yaml
from engine.example.site_resource import SITE
from tests.support.manifests import needs_kubectl
from tests.support.quota_operator import OPERATOR

pytestmark = needs_kubectl
REF = "tests.support.quota_operator:OPERATOR"


def rendered(tmp_path: Path, *flags: str) -> list[dict[str, Any]]:
    out = tmp_path / "base"
    result = CliRunner().invoke(
        cli,
        [
            "manifests",
            "--operator",
            REF,
            "--image",
            "reg/q:1",
            "--namespace",
            "quotas",
            "--out",
            str(out),
            *flags,
        ],
    )
    assert result.exit_code == 0, result.output
    text = subprocess.run(
        ["kubectl", "kustomize", str(out)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind]
    return found


@pytest.mark.parametrize("variant", ["self-signed", "cert-manager"])
def test_the_base_serves_the_webhooks(tmp_path: Path, variant: str) -> None:
    objects = rendered(
        tmp_path, "--webhook-certificates", variant, "--webhook-failure-policy", "Ignore"
    )
    validating = one(objects, "ValidatingWebhookConfiguration")
    mutating = one(objects, "MutatingWebhookConfiguration")
    [hook] = validating["webhooks"]
    assert hook["name"] == validating["metadata"]["name"] == "validate.quotas.webhooks.test"
    assert hook["rules"] == [
        {
            "apiGroups": ["webhooks.test"],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["quotas"],
            "scope": "Namespaced",
        }
    ]
    assert (hook["sideEffects"], hook["failurePolicy"], hook["timeoutSeconds"]) == (
        "None",
        "Ignore",
        10,
    )
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["clientConfig"]["service"] == {
        "name": "engine-webhook",
        "namespace": "quotas",
        "path": "/validate",
        "port": 443,
    }
    assert mutating["webhooks"][0]["clientConfig"]["service"]["path"] == "/mutate"
    crd = one(objects, "CustomResourceDefinition")
    assert [(v["name"], v["storage"]) for v in crd["spec"]["versions"]] == [
        ("v1", True),
        ("v1alpha1", False),
    ]
    conversion = crd["spec"]["conversion"]
    assert conversion["strategy"] == "Webhook"
    assert conversion["webhook"]["conversionReviewVersions"] == ["v1"]
    assert conversion["webhook"]["clientConfig"]["service"]["path"] == "/convert"
    service = [o for o in objects if o["kind"] == "Service" and "webhook" in o["metadata"]["name"]]
    assert service[0]["spec"]["ports"] == [
        {"name": "webhook", "port": 443, "targetPort": "webhook"}
    ]
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "webhook", "containerPort": 9443, "protocol": "TCP"} in container["ports"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ENGINE_WEBHOOK_PORT"] == "9443"
    assert env["ENGINE_WEBHOOK_FAILURE_POLICY"] == "Ignore"
    rules = one(objects, "ClusterRole")["rules"]
    injecting = [r for r in rules if r["apiGroups"] == ["admissionregistration.k8s.io"]]
    for manifest in (validating, mutating, crd):
        assert "caBundle" not in str(manifest)  # filled in later, by the engine or cert-manager
    if variant == "self-signed":
        assert env["ENGINE_WEBHOOK_SERVICE"] == "$(POD_NAMESPACE)/engine-webhook"
        assert sorted(r["resourceNames"][0] for r in injecting) == [
            "mutate.quotas.webhooks.test",
            "validate.quotas.webhooks.test",
        ]
        assert not [o for o in objects if o["kind"] in ("Certificate", "Issuer")]
    else:
        assert env["ENGINE_WEBHOOK_CERTIFICATES"] == "cert-manager"
        assert "ENGINE_WEBHOOK_SERVICE" not in env
        assert not injecting
        for manifest in (validating, mutating, crd):
            assert manifest["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
                "quotas/engine-webhook-cert"
            )
        certificate = one(objects, "Certificate")
        assert "engine-webhook.quotas.svc" in certificate["spec"]["dnsNames"]
        assert one(objects, "Issuer")["spec"] == {"selfSigned": {}}
        volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
        assert {"name": "webhook-certs", "secret": {"secretName": "engine-webhook-cert"}} in volumes
    # what webhooks add or change (the rest of the base is validated with config/)
    changed = (
        (validating, mutating, crd)
        if variant == "self-signed"
        else (one(objects, "Deployment"), service[0])
    )
    for manifest in changed:
        assert kubernetes_validate.validate(manifest, "1.31", strict=True) == "1.31"


def test_engine_crd_converts_through_the_default_service_and_plain_operators_are_unchanged() -> (
    None
):
    crd = yaml.safe_load(crd_yaml(OPERATOR, operator_ref=REF))
    service = crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"]
    assert (service["name"], service["namespace"]) == ("engine-webhook", "engine-system")
    assert "conversion" not in SITE.crd()["spec"]
    assert [v["name"] for v in SITE.crd()["spec"]["versions"]] == [SITE.version]
