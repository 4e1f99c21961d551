"""The real kubectl against `engine apiserver` with admission and conversion webhooks
served over HTTPS by tests/support/webhook_server.py: the configurations are listed and
printed, a refused create shows the webhook's message, a mutated default appears, a
Widget created as v1alpha1 reads as v1 and back, failurePolicy Fail and Ignore with the
webhook stopped, and a bad patch (timeouts: tests/integration/test_apiserver_webhooks.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e.kubectl import Kubectl, apiserver_process, needs_kubectl
from tests.support.webhook_server import (
    CROSS_FIELD_MESSAGE,
    GROUP,
    PLURAL,
    WebhookServer,
    closed_port_url,
    configuration,
    conversion_webhook,
    running_webhook,
    webhook,
    widget_crd,
)

pytestmark = [pytest.mark.e2e, needs_kubectl]


def apply(kubectl: Kubectl, *objects: dict[str, Any]) -> None:
    kubectl.ok("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))


def widget(name: str, label: str, version: str = "v1", **spec: Any) -> dict[str, Any]:
    field = "domain" if version == "v1" else "host"
    return {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "default", "labels": {"test": label}},
        "spec": {field: f"{name}.example.com", **spec},
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Kubectl, WebhookServer]]:
    """One server and one webhook for the module, the Widget CRD (Webhook conversion) and
    the webhook configurations applied."""
    with running_webhook() as hooks, apiserver_process(tmp_path_factory.mktemp("api")) as kubectl:
        down = {"url": closed_port_url()}
        apply(
            kubectl,
            widget_crd(conversion_webhook(hooks)),
            configuration(
                "MutatingWebhookConfiguration", "widget-defaults",
                webhook("owner.test", hooks.client_config("/mutate-owner"), labels={"test": "e2e"}),
                webhook("bad.test", hooks.client_config("/bad-patch"), labels={"test": "bad"}),
            ),
            configuration(
                "ValidatingWebhookConfiguration", "widget-rules",
                webhook("check.test", hooks.client_config("/validate"), labels={"test": "e2e"}),
                webhook("fail.test", down, labels={"test": "fail"}),
                webhook("ignore.test", down, labels={"test": "ignore"}, failurePolicy="Ignore"),
            ),
        )  # fmt: skip
        yield kubectl, hooks


def test_configurations_are_listed_and_printed(setup: tuple[Kubectl, WebhookServer]) -> None:
    kubectl, _ = setup
    rows = {line.split()[0]: line.split() for line in kubectl.ok("api-resources").splitlines()}
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        plural = f"{kind.lower()}s"
        assert rows[plural][1:] == ["admissionregistration.k8s.io/v1", "false", kind]
    printed = kubectl.ok("get", "validatingwebhookconfigurations").splitlines()
    assert printed[0].split() == ["NAME", "WEBHOOKS", "AGE"]
    assert printed[1].split()[:2] == ["widget-rules", "3"]


def test_refused_create_shows_the_message_and_a_default_is_filled(
    setup: tuple[Kubectl, WebhookServer],
) -> None:
    kubectl, _ = setup
    bad = widget("crowded", "e2e", replicas=9, maxReplicas=3)
    refused = kubectl.run("apply", "-f", "-", stdin=json.dumps(bad))
    assert refused.code != 0
    assert f'admission webhook "check.test" denied the request: {CROSS_FIELD_MESSAGE}' in (
        refused.stderr
    ), refused.describe()
    assert kubectl.run("get", "widget", "crowded").code != 0
    allowed = kubectl.run("apply", "-f", "-", stdin=json.dumps(widget("fine", "e2e", replicas=2)))
    assert allowed.code == 0, allowed.describe()
    assert "Warning: checked by validate" in allowed.stderr  # the webhook's warning
    owner = kubectl.ok("get", "widget", "fine", "-o", "jsonpath={.spec.owner}")
    assert owner == "kubernetes-admin"


def test_create_as_v1alpha1_read_as_v1_and_back(setup: tuple[Kubectl, WebhookServer]) -> None:
    kubectl, hooks = setup
    apply(kubectl, widget("old", "conv", version="v1alpha1", replicas=1))
    as_v1 = json.loads(kubectl.ok("get", f"{PLURAL}.v1.{GROUP}", "old", "-o", "json"))
    assert as_v1["apiVersion"] == f"{GROUP}/v1"
    assert as_v1["spec"] == {"domain": "old.example.com", "replicas": 1, "maxReplicas": 10}
    as_alpha = json.loads(kubectl.ok("get", f"{PLURAL}.v1alpha1.{GROUP}", "old", "-o", "json"))
    assert as_alpha["spec"] == {"host": "old.example.com", "replicas": 1, "maxReplicas": 10}
    assert as_alpha["metadata"]["uid"] == as_v1["metadata"]["uid"]
    assert any(c["request"]["desiredAPIVersion"] == f"{GROUP}/v1" for c in hooks.conversions)
    table = kubectl.ok("get", f"{PLURAL}.v1alpha1.{GROUP}", "-l", "test=conv").splitlines()
    assert table[0].split() == ["NAME", "REPLICAS", "AGE"]
    assert table[1].split()[:2] == ["old", "1"]


def test_failure_policy_with_the_webhook_stopped(setup: tuple[Kubectl, WebhookServer]) -> None:
    kubectl, _ = setup
    failed = kubectl.run("apply", "-f", "-", stdin=json.dumps(widget("closed", "fail")))
    assert failed.code != 0
    assert (
        'Internal error occurred: failed calling webhook "fail.test": failed to call webhook'
        in (failed.stderr)
    ), failed.describe()
    assert "connection refused" in failed.stderr
    apply(kubectl, widget("open", "ignore"))
    assert kubectl.ok("get", "widget", "open", "-o", "name") == f"widget.{GROUP}/open\n"


def test_a_bad_patch_is_an_internal_error(setup: tuple[Kubectl, WebhookServer]) -> None:
    kubectl, _ = setup
    bad = kubectl.run("apply", "-f", "-", stdin=json.dumps(widget("broken", "bad")))
    assert bad.code != 0
    assert "Error from server (InternalError)" in bad.stderr, bad.describe()
    assert kubectl.run("get", "widget", "broken").code != 0
