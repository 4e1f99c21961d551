"""`engine manifests` and `engine crd`: the project's config/ is exactly what the command
writes for the example, and the RBAC of another operator follows what it declares."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from engine import ChildKind, CustomResource, Operator
from engine.cli.main import cli
from engine.cli.operator_ref import EXAMPLE_OPERATOR
from engine.deploy.base import BaseOptions, image_parts, render_base
from engine.deploy.cluster_role import cluster_role

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = {"type": "object", "properties": {"spec": {"type": "object"}}}


async def _noop(ctx: object) -> None:
    return None


def widget_operator() -> Operator:
    return Operator(
        resource=CustomResource(
            group="shop.test", version="v2", kind="Widget", plural="widgets", schema=SCHEMA
        ),
        provision=_noop,
        children=(
            ChildKind(group="apps", version="v1", kind="Deployment", plural="deployments"),
            ChildKind(group="", version="v1", kind="Secret", plural="secrets"),
            ChildKind(group="", version="v1", kind="ConfigMap", plural="configmaps"),
        ),
    )


def test_config_is_what_engine_manifests_writes_for_the_example(tmp_path: Path) -> None:
    out = tmp_path / "base"
    result = CliRunner().invoke(
        cli, ["manifests", "--image", "engine:0.1.0", "--out", str(out)], env={}
    )
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert "kustomization.yaml" in written
    for relative in written:
        assert (ROOT / "config" / relative).read_text() == (out / relative).read_text(), relative


def test_the_deployment_runs_the_operator_it_was_generated_for() -> None:
    files = render_base(
        widget_operator(), BaseOptions(operator_ref="shop.op:OPERATOR", image="reg:5000/shop:1.2")
    )
    deployment = yaml.safe_load(files["manager/deployment.yaml"])
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["run", "--in-cluster", "--plain", "--operator", "shop.op:OPERATOR"]
    assert container["image"] == "reg:5000/shop"
    kustomization = yaml.safe_load(files["kustomization.yaml"])
    assert kustomization["images"] == [{"name": "reg:5000/shop", "newTag": "1.2"}]
    assert "crd/widget.yaml" in kustomization["resources"]


def test_child_kinds_get_exactly_list_watch_and_patch_grouped_by_api_group() -> None:
    rules = cluster_role(widget_operator(), name="shop")["rules"]
    children = [
        r for r in rules if r["apiGroups"] in (["apps"], [""]) and "events" not in r["resources"]
    ]
    assert children == [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list", "watch", "patch"]},
        {"apiGroups": [""], "resources": ["secrets", "configmaps"],
         "verbs": ["list", "watch", "patch"]},
    ]  # fmt: skip
    own = {tuple(r["resources"]): r["verbs"] for r in rules if r["apiGroups"] == ["shop.test"]}
    assert own == {
        ("widgets",): ["get", "list", "watch", "patch"],
        ("widgets/status",): ["patch"],
        ("widgets/finalizers",): ["update"],
    }
    assert not any("*" in r["verbs"] or "delete" in r["verbs"] for r in rules)


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        pytest.param("engine:0.1.0", ("engine", "0.1.0", None), id="name-and-tag"),
        pytest.param("reg:5000/op", ("reg:5000/op", None, None), id="registry-port-no-tag"),
        pytest.param("op@sha256:ab", ("op", None, "sha256:ab"), id="digest"),
    ],
)
def test_image_references_split_into_name_tag_and_digest(
    image: str, parts: tuple[str, str | None, str | None]
) -> None:
    assert image_parts(image) == parts


def test_engine_crd_prints_the_crd_the_base_holds() -> None:
    result = CliRunner().invoke(cli, ["crd", "--operator", EXAMPLE_OPERATOR], env={})
    assert result.exit_code == 0, result.output
    assert result.output == (ROOT / "config" / "crd" / "site.yaml").read_text()


def test_engine_crd_refuses_two_operators_claiming_one_kind() -> None:
    result = CliRunner().invoke(
        cli, ["crd", "--operator", EXAMPLE_OPERATOR, "--operator", EXAMPLE_OPERATOR], env={}
    )
    assert result.exit_code == 2
    assert "two operators claim the kind Site.example.dev" in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["--name", "Bad_Name"], "--name 'Bad_Name' is not a DNS label", id="name"),
        pytest.param(["--namespace", "x" * 50], "is not a DNS label", id="namespace"),
        pytest.param(["--image", "a b"], "is not an image reference", id="image"),
    ],
)
def test_engine_manifests_refuses_bad_options_in_one_line(
    args: list[str], needle: str, tmp_path: Path
) -> None:
    base = ["manifests", "--image", "engine:1", "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, [*base, *args], env={})
    assert result.exit_code == 2
    assert needle in result.output
    assert result.output.strip().count("\n") == 0
