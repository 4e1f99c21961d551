"""Regenerate engine/apiserver/schema/builtin_schemas.json.gz from kubernetes-validate.

kubernetes-validate (a dev dependency) ships the JSON schemas of every built-in kind per
Kubernetes version (about 100 MiB in all). The API server needs only the definitions
reachable from the kinds it serves, for one version, as OpenAPI v3 component schemas:
this script selects those, converts them (nullable type lists to one type, IntOrString
to `x-kubernetes-int-or-string`, `$defs` refs to `#/components/schemas`, no
`additionalProperties: false`, no apiVersion/kind enums) and writes them gzipped.

Run: .venv/bin/python scripts/builtin_schemas.py  (then commit the output file)
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path
from typing import Any

KUBERNETES_VERSION = "v1.32.0"
ROOTS = (
    "io.k8s.api.core.v1.Pod",
    "io.k8s.api.core.v1.Node",
    "io.k8s.api.core.v1.Namespace",
    "io.k8s.api.core.v1.ConfigMap",
    "io.k8s.api.core.v1.Secret",
    "io.k8s.api.core.v1.Service",
    "io.k8s.api.core.v1.ServiceAccount",
    "io.k8s.api.core.v1.Event",
    "io.k8s.api.events.v1.Event",
    "io.k8s.api.apps.v1.Deployment",
    "io.k8s.api.apps.v1.ReplicaSet",
    "io.k8s.api.apps.v1.StatefulSet",
    "io.k8s.api.batch.v1.Job",
    "io.k8s.api.batch.v1.CronJob",
    "io.k8s.api.coordination.v1.Lease",
    "io.k8s.api.autoscaling.v1.Scale",
    "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
    "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration",
)
_REF_PREFIX = "#/$defs/"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
OUTPUT = Path(__file__).parent.parent / "engine/apiserver/schema/builtin_schemas.json.gz"


def _definitions() -> dict[str, Any]:
    base = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    folder = base / f"{KUBERNETES_VERSION}-local-strict"
    loaded = json.loads((folder / "_definitions.json").read_text())
    return dict(loaded["$defs"])


def _convert(node: Any, *, refs: set[str], key: str = "") -> Any:
    if isinstance(node, list):
        return [_convert(item, refs=refs) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for name, value in node.items():
        if name == "additionalProperties" and value is False:
            continue
        if name == "enum" and key in ("apiVersion", "kind"):
            continue
        if name == "type" and isinstance(value, list):
            kinds = [t for t in value if t != "null"]
            out["type"] = kinds[0] if len(kinds) == 1 else kinds
            continue
        if name == "$ref":
            target = str(value).removeprefix(_REF_PREFIX)
            refs.add(target)
            out["$ref"] = f"#/components/schemas/{target}"
            continue
        if name == "properties" and isinstance(value, dict):
            out[name] = {p: _convert(s, refs=refs, key=p) for p, s in value.items()}
            continue
        out[name] = _convert(value, refs=refs)
    if "$ref" in out and len(out) > 1:  # OpenAPI 3.0: siblings of $ref are ignored
        ref = out.pop("$ref")
        out = {**out, "allOf": [{"$ref": ref}]}
    return out


def _special(name: str, definition: dict[str, Any]) -> dict[str, Any] | None:
    description = definition.get("description", "")
    if name == _INT_OR_STRING:
        return {"description": description, "type": "string", "format": "int-or-string",
                "x-kubernetes-int-or-string": True}  # fmt: skip
    if name == _QUANTITY:
        return {"description": description, "type": "string",
                "x-kubernetes-int-or-string": True}  # fmt: skip
    return None


def build() -> dict[str, Any]:
    """The component schemas reachable from ROOTS, converted."""
    definitions = _definitions()
    pending = list(ROOTS)
    converted: dict[str, Any] = {}
    while pending:
        name = pending.pop()
        if name in converted:
            continue
        refs: set[str] = set()
        special = _special(name, definitions[name])
        converted[name] = special or _convert(definitions[name], refs=refs)
        pending.extend(sorted(refs - set(converted)))
    return {"kubernetesVersion": KUBERNETES_VERSION, "schemas": dict(sorted(converted.items()))}


def main() -> None:
    """Write OUTPUT."""
    data = json.dumps(build(), separators=(",", ":"), sort_keys=True).encode()
    OUTPUT.write_bytes(gzip.compress(data, mtime=0))
    print(f"wrote {OUTPUT} ({len(data)} bytes of JSON, {OUTPUT.stat().st_size} gzipped)")


if __name__ == "__main__":
    main()
