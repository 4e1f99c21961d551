"""Admission and conversion webhooks called by the embedded API server, over real HTTPS
to a real webhook (tests/support/webhook_server.py), driven with kubernetes-asyncio:
order (mutating, schema, validating), denials with the webhook's code and message,
failurePolicy with the webhook stopped, timeouts, bad and forbidden patches, selectors,
subresources, DELETE, dry run, and Widgets stored as v1 read and written as v1alpha1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.rest import ApiException

from engine.apiserver.http.embedded import serve_apiserver
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

pytestmark = pytest.mark.asyncio(loop_scope="module")
NS = "default"
VALIDATING = "ValidatingWebhookConfiguration"
MUTATING = "MutatingWebhookConfiguration"


@pytest.fixture(scope="module")
def hook_server() -> Iterator[WebhookServer]:
    with running_webhook() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(hook_server: WebhookServer) -> AsyncIterator[client.ApiClient]:
    async with serve_apiserver() as server:
        configuration_ = client.Configuration()
        configuration_.host = server.url
        async with client.ApiClient(configuration_) as api_client:
            crd = widget_crd(conversion_webhook(hook_server))
            await client.ApiextensionsV1Api(api_client).create_custom_resource_definition(crd)
            yield api_client


def widget(name: str, label: str, version: str = "v1", **spec: Any) -> dict[str, Any]:
    field = "domain" if version == "v1" else "host"
    return {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "Widget",
        "metadata": {"name": name, "labels": {"test": label}},
        "spec": {field: f"{name}.example.com", **spec},
    }


async def create(api: client.ApiClient, obj: dict[str, Any], **kwargs: Any) -> Any:
    version = obj["apiVersion"].split("/")[1]
    return await client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, version, NS, PLURAL, obj, **kwargs
    )


async def configure(api: client.ApiClient, kind: str, name: str, *hooks: dict[str, Any]) -> None:
    admission = client.AdmissionregistrationV1Api(api)
    body = configuration(kind, name, *hooks)
    if kind == VALIDATING:
        await admission.create_validating_webhook_configuration(body)
    else:
        await admission.create_mutating_webhook_configuration(body)


def failure(error: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    return body


async def test_configurations_are_served_with_upstream_defaults(
    api: client.ApiClient, hook_server: WebhookServer
) -> None:
    await configure(
        api,
        VALIDATING,
        "defaults",
        webhook("d.test", hook_server.client_config("/validate"), labels={"test": "none"}),
    )
    admission = client.AdmissionregistrationV1Api(api)
    stored = await admission.read_validating_webhook_configuration("defaults")
    hook = stored.webhooks[0]
    assert (hook.failure_policy, hook.match_policy, hook.timeout_seconds) == (
        "Fail",
        "Equivalent",
        10,
    )
    assert hook.rules[0].scope == "*"
    listed = await client.ApisApi(api).get_api_versions()
    assert "admissionregistration.k8s.io" in {g.name for g in listed.groups}
    bad = webhook("bad.test", {"url": "http://insecure"}, sideEffects="Some", timeoutSeconds=31)
    with pytest.raises(ApiException) as refused:
        await configure(api, MUTATING, "invalid", bad)
    assert refused.value.status == 422
    message = failure(refused.value)["message"]
    assert "webhooks[0].sideEffects" in message
    assert "between 1 and 30 seconds" in message
    assert "'https' is the only allowed URL scheme" in message


async def test_mutating_in_order_then_schema_then_validating(
    api: client.ApiClient, hook_server: WebhookServer
) -> None:
    labels = {"test": "order"}
    await configure(
        api,
        MUTATING,
        "b-tag",
        webhook("tag.test", hook_server.client_config("/mutate-tag"), labels=labels),
    )
    await configure(
        api,
        MUTATING,
        "a-owner",
        webhook("owner.test", hook_server.client_config("/mutate-owner"), labels=labels),
    )
    await configure(
        api,
        VALIDATING,
        "order",
        webhook("check.test", hook_server.client_config("/validate"), labels=labels),
    )
    made = await create(api, widget("ordered", "order", replicas=3))
    assert made["spec"]["owner"] == "kubernetes-admin"  # a default no schema can express
    assert made["metadata"]["annotations"] == {"seen-owner": "kubernetes-admin"}  # saw a-owner's
    assert made["spec"]["maxReplicas"] == 10  # the schema default, applied after mutation
    checked = [r for r in hook_server.sent("/validate") if r["name"] == "ordered"][-1]
    assert checked["object"]["spec"]["owner"] == "kubernetes-admin"
    assert checked["object"]["spec"]["maxReplicas"] == 10  # validating sees the defaulted object
    assert checked["kind"] == {"group": GROUP, "version": "v1", "kind": "Widget"}
    assert checked["resource"] == {"group": GROUP, "version": "v1", "resource": PLURAL}
    assert (checked["operation"], checked["namespace"], checked["dryRun"]) == ("CREATE", NS, False)
    assert checked["userInfo"]["username"] == "kubernetes-admin"
    assert checked["options"]["kind"] == "CreateOptions"
    assert checked["oldObject"] is None

    with pytest.raises(ApiException) as refused:
        await create(api, widget("too-many", "order", replicas=20, maxReplicas=5))
    assert refused.value.status == 422
    assert failure(refused.value)["message"] == (
        f'admission webhook "check.test" denied the request: {CROSS_FIELD_MESSAGE}'
    )
    patch = {"spec": {"replicas": 11}}
    with pytest.raises(ApiException) as refused_update:
        await client.CustomObjectsApi(api).patch_namespaced_custom_object(
            GROUP, "v1", NS, PLURAL, "ordered", patch, _content_type="application/merge-patch+json"
        )
    assert refused_update.value.status == 422
    update = [r for r in hook_server.sent("/validate") if r["name"] == "ordered"][-1]
    assert update["operation"] == "UPDATE"
    assert update["oldObject"]["spec"]["replicas"] == 3
    dry = await create(api, widget("dry", "order", replicas=1), dry_run="All")
    assert dry["spec"]["owner"] == "kubernetes-admin"
    assert [r["dryRun"] for r in hook_server.sent("/validate") if r["name"] == "dry"] == [True]
    with pytest.raises(ApiException) as absent:
        await client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, "v1", NS, PLURAL, "dry"
        )
    assert absent.value.status == 404


async def test_reinvocation_if_needed(api: client.ApiClient, hook_server: WebhookServer) -> None:
    labels = {"test": "again"}
    tag = webhook("again-tag.test", hook_server.client_config("/mutate-tag"), labels=labels)
    await configure(api, MUTATING, "again-1-tag", {**tag, "reinvocationPolicy": "IfNeeded"})
    owner = webhook("again-owner.test", hook_server.client_config("/mutate-owner"), labels=labels)
    await configure(api, MUTATING, "again-2-owner", owner)
    made = await create(api, widget("again", "again"))
    assert made["metadata"]["annotations"] == {"seen-owner": "kubernetes-admin"}
    tagged = [r for r in hook_server.sent("/mutate-tag") if r["name"] == "again"]
    assert [r["object"]["spec"].get("owner") for r in tagged] == [None, "kubernetes-admin"]


async def test_failure_policy_with_the_webhook_stopped(
    api: client.ApiClient, hook_server: WebhookServer
) -> None:
    down = {"url": closed_port_url()}
    await configure(
        api, VALIDATING, "down-fail", webhook("fail.test", down, labels={"test": "fail"})
    )
    await configure(
        api,
        VALIDATING,
        "down-ignore",
        webhook("ignore.test", down, labels={"test": "ignore"}, failurePolicy="Ignore"),
    )
    with pytest.raises(ApiException) as failed:
        await create(api, widget("refused", "fail"))
    body = failure(failed.value)
    assert (failed.value.status, body["reason"]) == (500, "InternalError")
    assert body["message"].startswith(
        'Internal error occurred: failed calling webhook "fail.test": '
        'failed to call webhook: Post "'
    )
    assert body["message"].endswith("connect: connection refused")
    assert (await create(api, widget("ignored", "ignore")))["metadata"]["name"] == "ignored"
    unverified = {"url": f"{hook_server.url}/validate"}  # no caBundle: the system's CAs
    service = {"service": {"namespace": "default", "name": "hooks", "path": "/validate"}}
    await configure(
        api, VALIDATING, "unreachable",
        webhook("tls.test", unverified, labels={"test": "tls"}),
        webhook("service.test", service, labels={"test": "service"}),
    )  # fmt: skip
    for label, expected in (("tls", "tls: failed to verify certificate"),
                            ("service", 'service "default/hooks" cannot be reached')):  # fmt: skip
        with pytest.raises(ApiException) as unreachable:
            await create(api, widget(f"via-{label}", label))
        assert unreachable.value.status == 500
        assert expected in failure(unreachable.value)["message"]


async def test_timeout_bad_patch_rename_and_status(
    api: client.ApiClient, hook_server: WebhookServer
) -> None:
    await configure(
        api,
        VALIDATING,
        "slow",
        webhook(
            "slow.test",
            hook_server.client_config("/slow"),
            labels={"test": "slow"},
            timeoutSeconds=1,
        ),
    )
    await configure(
        api,
        MUTATING,
        "bad",
        webhook("bad.test", hook_server.client_config("/bad-patch"), labels={"test": "bad"}),
    )
    await configure(
        api,
        MUTATING,
        "rename",
        webhook("rename.test", hook_server.client_config("/rename"), labels={"test": "rename"}),
    )
    await configure(
        api,
        MUTATING,
        "status",
        webhook(
            "status.test", hook_server.client_config("/mutate-status"), labels={"test": "status"}
        ),
    )
    with pytest.raises(ApiException) as slow:
        await create(api, widget("slow", "slow"))
    assert slow.value.status == 500
    assert failure(slow.value)["message"].endswith('?timeout=1s": context deadline exceeded')
    with pytest.raises(ApiException) as bad:
        await create(api, widget("bad", "bad"))
    assert bad.value.status == 500
    assert failure(bad.value)["reason"] == "InternalError"
    assert failure(bad.value)["message"].startswith("Internal error occurred: ")
    with pytest.raises(ApiException) as renamed:
        await create(api, widget("renamed", "rename"))
    assert renamed.value.status == 400
    assert "a mutating webhook may not rename it" in failure(renamed.value)["message"]
    made = await create(api, widget("forged", "status"))
    assert "status" not in made  # a main-resource request cannot set status: reset, as upstream


async def test_subresource_delete_and_selectors(
    api: client.ApiClient, hook_server: WebhookServer
) -> None:
    labels = {"test": "sub"}
    status_hook = webhook(
        "status-only.test",
        hook_server.client_config("/validate"),
        labels=labels,
        resources=(f"{PLURAL}/status",),
    )
    delete_hook = webhook(
        "deletes.test",
        hook_server.client_config("/validate"),
        labels=labels,
        operations=("DELETE",),
    )
    await configure(api, VALIDATING, "sub", status_hook, delete_hook)
    await create(api, widget("plain", "sub"))
    assert not [
        r for r in hook_server.sent("/validate") if r["name"] == "plain"
    ]  # rule: status only
    custom = client.CustomObjectsApi(api)
    await custom.patch_namespaced_custom_object_status(
        GROUP,
        "v1",
        NS,
        PLURAL,
        "plain",
        {"status": {"phase": "Ready"}},
        _content_type="application/merge-patch+json",
    )
    seen = [r for r in hook_server.sent("/validate") if r["name"] == "plain"]
    assert [(r["operation"], r.get("subResource")) for r in seen] == [("UPDATE", "status")]
    guarded = widget("guarded", "sub")
    guarded["metadata"]["labels"]["protected"] = "true"
    await create(api, guarded)
    with pytest.raises(ApiException) as kept:
        await custom.delete_namespaced_custom_object(GROUP, "v1", NS, PLURAL, "guarded")
    assert kept.value.status == 403
    assert (
        failure(kept.value)["message"]
        == 'admission webhook "deletes.test" denied the request: this widget is protected'
    )
    deleted = [r for r in hook_server.sent("/validate") if r["name"] == "guarded"][-1]
    assert deleted["object"] is None
    assert deleted["oldObject"]["metadata"]["name"] == "guarded"
    await custom.delete_namespaced_custom_object(GROUP, "v1", NS, PLURAL, "plain")
    other = widget("unlabelled", "nobody")
    await create(api, other)
    assert not [r for r in hook_server.sent("/validate") if r["name"] == "unlabelled"]


async def test_conversion_create_as_v1alpha1_read_as_v1_and_back(
    api: client.ApiClient, hook_server: WebhookServer
) -> None:
    custom = client.CustomObjectsApi(api)
    made = await create(api, widget("alpha", "conv", version="v1alpha1", replicas=2))
    assert made["apiVersion"] == f"{GROUP}/v1alpha1"
    assert made["spec"]["host"] == "alpha.example.com"
    as_v1 = await custom.get_namespaced_custom_object(GROUP, "v1", NS, PLURAL, "alpha")
    assert as_v1["apiVersion"] == f"{GROUP}/v1"
    assert as_v1["spec"] == {"domain": "alpha.example.com", "replicas": 2, "maxReplicas": 10}
    back = await custom.get_namespaced_custom_object(GROUP, "v1alpha1", NS, PLURAL, "alpha")
    assert back["spec"] == {"host": "alpha.example.com", "replicas": 2, "maxReplicas": 10}
    assert back["metadata"] == as_v1["metadata"]
    await create(api, widget("beta", "conv", replicas=1))
    before = len(hook_server.conversions)
    listed = await custom.list_namespaced_custom_object(
        GROUP, "v1alpha1", NS, PLURAL, label_selector="test=conv"
    )
    assert [(i["apiVersion"], i["spec"]["host"]) for i in listed["items"]] == [
        (f"{GROUP}/v1alpha1", "alpha.example.com"),
        (f"{GROUP}/v1alpha1", "beta.example.com"),
    ]
    assert len(hook_server.conversions) == before + 1  # one ConversionReview for the list
    stream = watch.Watch()
    events = []
    async for event in stream.stream(
        custom.list_namespaced_custom_object,
        GROUP,
        "v1alpha1",
        NS,
        PLURAL,
        label_selector="test=conv",
        timeout_seconds=1,
    ):
        events.append(event)
        if len(events) == 2:
            stream.stop()
    assert {e["object"]["spec"]["host"] for e in events} == {
        "alpha.example.com",
        "beta.example.com",
    }
    patched = await custom.patch_namespaced_custom_object(
        GROUP,
        "v1alpha1",
        NS,
        PLURAL,
        "beta",
        {"spec": {"host": "moved.example.com"}},
        _content_type="application/merge-patch+json",
    )
    assert patched["spec"]["host"] == "moved.example.com"
    stored = await custom.get_namespaced_custom_object(GROUP, "v1", NS, PLURAL, "beta")
    assert stored["spec"]["domain"] == "moved.example.com"
    assert "host" not in stored["spec"]


async def test_match_conditions(api: client.ApiClient, hook_server: WebhookServer) -> None:
    config = hook_server.client_config("/validate")
    big = [
        {"name": "big", "expression": "object.spec.replicas > 5 && request.operation == 'CREATE'"}
    ]
    broken = [{"name": "broken", "expression": "object.spec.nothing == 1"}]
    await configure(
        api, VALIDATING, "conditions",
        webhook("big.test", config, labels={"test": "cel"}, matchConditions=big),
        webhook("broken.test", config, labels={"test": "cel-broken"}, matchConditions=broken),
    )  # fmt: skip
    await create(api, widget("small", "cel", replicas=3))
    await create(api, widget("large", "cel", replicas=8))
    called = {r["name"] for r in hook_server.sent("/validate")} & {"small", "large"}
    assert called == {"large"}
    with pytest.raises(ApiException) as failed:
        await create(api, widget("unknown", "cel-broken", replicas=1))
    assert failed.value.status == 500
    assert (
        'webhook "broken.test": failed evaluating match conditions: broken: '
        in (failure(failed.value)["message"])
    )
    bad = [{"name": "bad", "expression": "object.("}]
    with pytest.raises(ApiException) as refused:
        await configure(
            api, VALIDATING, "bad-cel", webhook("cel.test", config, matchConditions=bad)
        )
    assert refused.value.status == 422
    assert "matchConditions[0].expression" in failure(refused.value)["message"]
    assert "compilation failed" in failure(refused.value)["message"]


async def test_scale_subresource_sends_a_scale(
    api: client.ApiClient, hook_server: WebhookServer
) -> None:
    rule = {"resources": ("deployments/scale",), "operations": ("UPDATE",)}
    scale_hook = webhook("scale.test", hook_server.client_config("/validate"), **rule)
    scale_hook["rules"][0]["apiGroups"] = ["apps"]
    await configure(api, VALIDATING, "scale", scale_hook)
    apps = client.AppsV1Api(api)
    labels = {"app": "scaled"}
    await apps.create_namespaced_deployment(NS, {
        "metadata": {"name": "scaled"},
        "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    })  # fmt: skip
    with pytest.raises(ApiException) as refused:
        await apps.patch_namespaced_deployment_scale("scaled", NS, {"spec": {"replicas": 20}})
    assert refused.value.status == 422
    assert CROSS_FIELD_MESSAGE in failure(refused.value)["message"]
    await apps.patch_namespaced_deployment_scale("scaled", NS, {"spec": {"replicas": 2}})
    sent = [r for r in hook_server.sent("/validate") if r["name"] == "scaled"]
    replicas = [r["object"]["spec"]["replicas"] for r in sent]
    assert replicas[0] == 20  # refused
    assert set(replicas[1:]) == {2}  # once, or again when the write raced the controller
    assert sent[0]["kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert sent[0]["subResource"] == "scale"
    assert sent[0]["resource"]["resource"] == "deployments"
    assert (await apps.read_namespaced_deployment("scaled", NS)).spec.replicas == 2


async def test_match_policy_and_namespace_selector(
    api: client.ApiClient, hook_server: WebhookServer
) -> None:
    config = hook_server.client_config("/validate")
    v1_only = {"labels": {"test": "policy"}, "versions": ("v1",)}
    await configure(
        api, VALIDATING, "policy",
        webhook("equivalent.test", config, **v1_only),
        webhook("exact.test", config, matchPolicy="Exact", **v1_only),
    )  # fmt: skip
    await create(api, widget("through-alpha", "policy", version="v1alpha1"))
    sent = [r for r in hook_server.sent("/validate") if r["name"] == "through-alpha"]
    assert len(sent) == 1  # the Exact webhook names v1 only: not called for v1alpha1
    assert sent[0]["kind"]["version"] == "v1"
    assert sent[0]["requestKind"]["version"] == "v1alpha1"
    assert sent[0]["object"]["apiVersion"] == f"{GROUP}/v1"
    assert sent[0]["object"]["spec"]["domain"] == "through-alpha.example.com"  # converted
    core = client.CoreV1Api(api)
    for name, team in (("team-a", "a"), ("team-b", "b")):
        await core.create_namespace({"metadata": {"name": name, "labels": {"team": team}}})
    selector = {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}
    await configure(
        api, VALIDATING, "by-namespace",
        webhook("team.test", config, labels={"test": "ns"}, namespaceSelector=selector),
    )  # fmt: skip
    custom = client.CustomObjectsApi(api)
    for namespace in ("team-a", "team-b"):
        await custom.create_namespaced_custom_object(
            GROUP, "v1", namespace, PLURAL, widget(f"in-{namespace}", "ns")
        )
    called = {r["namespace"] for r in hook_server.sent("/validate") if r["name"].startswith("in-")}
    assert called == {"team-a"}


async def test_conversion_that_returns_the_wrong_count_fails(
    api: client.ApiClient, hook_server: WebhookServer
) -> None:
    extensions = client.ApiextensionsV1Api(api)
    name = f"{PLURAL}.{GROUP}"

    async def convert_through(path: str) -> None:
        patch = {"spec": {"conversion": conversion_webhook(hook_server, path)}}
        await extensions.patch_custom_resource_definition(
            name, patch, _content_type="application/merge-patch+json"
        )

    await convert_through("/convert-drop")
    try:
        with pytest.raises(ApiException) as failed:
            await client.CustomObjectsApi(api).get_namespaced_custom_object(
                GROUP, "v1alpha1", NS, PLURAL, "alpha"
            )
    finally:
        await convert_through("/convert")
    assert failed.value.status == 500
    assert failure(failed.value)["message"] == (
        f"Internal error occurred: conversion webhook for {GROUP}/v1alpha1, Kind=Widget "
        "returned 0 objects, expected 1"
    )
    listed = await client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, "v1alpha1", NS, PLURAL, label_selector="test=conv"
    )
    assert len(listed["items"]) == 2  # converting again once the webhook answers rightly
