"""The `scale` subresource of ReplicaSets, Deployments and StatefulSets: an autoscaling/v1
Scale view of `spec.replicas`, read and written (PUT or PATCH) as `kubectl scale` does."""

from __future__ import annotations

import json
from typing import Any

from engine.apiserver.admission.chain import admitted
from engine.apiserver.admission.review import AdmissionAttributes
from engine.apiserver.authn.user_info import UserInfo
from engine.apiserver.http.target import Target
from engine.apiserver.schema.admission import Admitted
from engine.apiserver.store.api_context import ApiContext
from engine.apiserver.store.errors import ApiError, conflict, not_found
from engine.apiserver.store.storage import StaleWrite
from engine.apiserver.verbs import lifecycle, patch
from engine.apiserver.verbs.writes import commit_prepared

_MAX_RETRIES = 50


def selector_text(selector: Any) -> str:
    """A LabelSelector object as the string form Scale.status.selector carries."""
    if not isinstance(selector, dict):
        return ""
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or ():
        key, operator = expression.get("key", ""), str(expression.get("operator", ""))
        values = ",".join(sorted(expression.get("values") or ()))
        match operator:
            case "Exists":
                terms.append(key)
            case "DoesNotExist":
                terms.append(f"!{key}")
            case _:
                terms.append(f"{key} {operator.lower()} ({values})")
    return ",".join(terms)


def scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The Scale an object shows through its subresource."""
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            key: meta[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in meta
        },
        "spec": {"replicas": int(spec.get("replicas", 1))},
        "status": {
            "replicas": int(status.get("replicas") or 0),
            "selector": selector_text(spec.get("selector")),
        },
    }


def _wanted_replicas(scale: Any) -> int:
    spec = scale.get("spec") if isinstance(scale, dict) else None
    replicas = spec.get("replicas") if isinstance(spec, dict) else None
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise ApiError(
            422,
            f'Scale "" is invalid: spec.replicas: Invalid value: {json.dumps(replicas)}: '
            "must be a non-negative integer",
            reason="Invalid",
        )
    return replicas


async def serve_scale(
    ctx: ApiContext,
    target: Target,
    *,
    verb: str,
    raw: bytes,
    content_type: str,
    user: UserInfo | None = None,
) -> dict[str, Any]:
    """GET, PUT or PATCH `…/{name}/scale`; a write sets `spec.replicas` on the object
    (after the admission webhooks that name `…/scale` have seen the Scale)."""
    rtype = target.rtype
    assert target.name is not None
    key = target.key()
    for _ in range(_MAX_RETRIES):
        old = ctx.store.get(key)
        if old is None:
            raise not_found(rtype.plural, target.name, group=rtype.group)
        current = scale_of(old)
        if verb == "get":
            return current
        if verb == "patch":
            try:
                wanted = patch.apply_patch(current, raw, content_type, custom_resource=False)
            except patch.PatchError as bad:
                raise ApiError(bad.code, bad.message, reason=bad.reason) from None
        elif verb == "update":
            try:
                wanted = json.loads(raw or b"{}")
            except ValueError:
                raise ApiError(400, "the Scale body is not valid JSON") from None
            given_rv = ((wanted.get("metadata") or {}) if isinstance(wanted, dict) else {}).get(
                "resourceVersion"
            )
            if given_rv and str(given_rv) != old["metadata"]["resourceVersion"]:
                raise conflict(rtype.plural, target.name, group=rtype.group)
        else:
            raise ApiError(405, f"{verb} is not supported on scale", reason="MethodNotAllowed")
        attrs = AdmissionAttributes(
            operation="UPDATE", rtype=rtype, subresource="scale",
            namespace=target.namespace or "", name=target.name, user=user, dry_run=False,
            kind=("autoscaling", "v1", "Scale"),
        )  # fmt: skip
        if isinstance(wanted, dict):
            wanted = (await admitted(ctx, attrs, wanted, current, lambda o: Admitted(o, ()))).obj
        replicas = _wanted_replicas(wanted)
        changed = {**old, "spec": {**(old.get("spec") or {}), "replicas": replicas}}
        new = lifecycle.prepare_update(rtype, old, changed, status_only=False)
        try:
            stored = await commit_prepared(ctx, key, old, new, dry_run=False)
        except StaleWrite:
            continue
        return scale_of(stored)
    raise conflict(rtype.plural, target.name, group=rtype.group)
