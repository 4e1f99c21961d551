"""The example Site operator's pure parts: CRD file, samples, spec checks, child manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from engine.example.registry_client import RegistryClient
from engine.example.site import (
    config_map,
    registration_payload,
    site_operator,
    unsupported_reason,
    web_service,
)
from engine.example.site_resource import SCHEMA, SITE, render_crd_yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "config" / "samples").glob("site-*.yaml"))


def test_crd_file_is_the_rendering_of_the_declared_resource() -> None:
    installed = yaml.safe_load((ROOT / "config" / "crd" / "site.yaml").read_text())
    assert installed == yaml.safe_load(render_crd_yaml())


def test_crd_has_status_subresource_printer_columns_and_required_domain() -> None:
    crd = yaml.safe_load(render_crd_yaml())
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "State",
        "Domain",
        "Replicas",
        "Age",
    ]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["required"] == ["domain"]
    assert spec["properties"]["replicas"]["default"] == 1
    assert spec["properties"]["message"]["default"] == "hello"


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample_is_a_valid_site(path: Path) -> None:
    sample = yaml.safe_load(path.read_text())
    assert sample["apiVersion"] == SITE.api_version
    assert sample["kind"] == "Site"
    jsonschema.Draft4Validator(SCHEMA).validate(sample)
    assert unsupported_reason(sample["spec"]) is None


def test_there_are_at_least_two_samples() -> None:
    assert len(SAMPLES) >= 2


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        pytest.param({"domain": "invalid.example"}, "reserved", id="reserved-domain"),
        pytest.param({"domain": "shop.invalid"}, "reserved", id="invalid-tld"),
        pytest.param(
            {"domain": "a.example.com", "tier": "basic", "replicas": 4},
            "at most 3 replicas",
            id="basic-tier-too-many-replicas",
        ),
    ],
)
def test_spec_the_registry_refuses_gets_a_reason(spec: dict[str, Any], fragment: str) -> None:
    reason = unsupported_reason(spec)
    assert reason is not None
    assert fragment in reason


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"domain": "a.example.com"}, id="defaults"),
        pytest.param({"domain": "a.example.com", "tier": "basic", "replicas": 3}, id="basic-max"),
        pytest.param({"domain": "a.example.com", "tier": "premium", "replicas": 10}, id="premium"),
    ],
)
def test_spec_the_registry_accepts_has_no_reason(spec: dict[str, Any]) -> None:
    assert unsupported_reason(spec) is None


def test_password_never_reaches_children_or_registration() -> None:
    spec = {"domain": "a.example.com", "password": "hunter2", "dependsOn": ["b"]}
    for document in (config_map("a", spec), web_service("a"), registration_payload(spec)):
        assert "hunter2" not in yaml.safe_dump(document)
    assert config_map("a", spec)["data"]["dependsOn"] == '["b"]'


def test_children_have_deterministic_names() -> None:
    assert config_map("blog", {"domain": "b.example.com"})["metadata"]["name"] == "blog-config"
    assert web_service("blog")["metadata"]["name"] == "blog-web"


def test_operator_declares_children_finalizer_and_secret_field() -> None:
    operator = site_operator(RegistryClient("http://127.0.0.1:1"))
    assert {child.kind for child in operator.children} == {"ConfigMap", "Service", "Deployment"}
    assert operator.finalize is not None
    assert operator.finalizer_name == "example.dev/finalizer"
    assert operator.secret_fields == ("spec.password",)
    assert operator.child_kind("v1", "Service") is not None
