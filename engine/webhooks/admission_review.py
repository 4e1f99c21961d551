"""One AdmissionReview v1 answered by the operator's `validate` or `mutate` handler.

`review_request` reads the request (a malformed body is a `BadReview`, HTTP 400);
`admit` runs the handler and returns the answer with its `AdmissionDecision`:

- allowed: `response.allowed` true; for `mutate`, the JSON patch (RFC 6902, computed
  with jsonpatch from the object to the handler's result) base64-encoded with
  `patchType: JSONPatch`;
- rejected: `allowed` false and `status` {code, message}: the handler raised `Rejected`,
  or its result broke a rule (a mutate that changes metadata.name, metadata.namespace,
  apiVersion, kind or status, or returns no object);
- error: the handler raised anything else or passed its deadline. The answer is HTTP 500
  with a Status, so the API server applies the webhook's `failurePolicy` (Fail refuses
  the request, Ignore admits it), as for a webhook that cannot be reached.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonpatch

from engine.runtime.reconcile.admission import AdmissionRequest, Rejected, UserInfo
from engine.telemetry.redaction import Redactor
from engine.webhooks.decisions import AdmissionDecision, Result
from engine.webhooks.handler_call import HandlerTimeout, call_handler

API_VERSION = "admission.k8s.io/v1"
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")
PROTECTED = (
    ("metadata", "name"),
    ("metadata", "namespace"),
    ("apiVersion",),
    ("kind",),
    ("status",),
)
"""What a mutate handler may not change on the main resource."""


class BadReview(ValueError):
    """A body that is not an AdmissionReview v1 request (answered with HTTP 400)."""


@dataclass(frozen=True, slots=True)
class AdmissionAnswer:
    """The HTTP answer (status and JSON body) and the decision to journal."""

    http_status: int
    body: dict[str, Any]
    decision: AdmissionDecision


def review_request(body: Any) -> AdmissionRequest:
    """The `request` of an AdmissionReview v1 body. Errors: `BadReview` naming the field."""
    if not isinstance(body, dict) or body.get("kind") != "AdmissionReview":
        raise BadReview("the body is not an AdmissionReview")
    if body.get("apiVersion") != API_VERSION:
        raise BadReview(f"apiVersion {body.get('apiVersion')!r} is not {API_VERSION}")
    request = body.get("request")
    if not isinstance(request, dict):
        raise BadReview("the AdmissionReview has no request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("request.uid is missing")
    operation = request.get("operation")
    if operation not in OPERATIONS:
        raise BadReview(f"request.operation {operation!r} is not one of {', '.join(OPERATIONS)}")
    obj, old = request.get("object"), request.get("oldObject")
    for field, value in (("object", obj), ("oldObject", old)):
        if value is not None and not isinstance(value, dict):
            raise BadReview(f"request.{field} is not an object")
    user = request.get("userInfo") or {}
    kind = request.get("kind") or {}
    metadata = (obj or old or {}).get("metadata") or {}
    return AdmissionRequest(
        uid=uid,
        operation=operation,
        namespace=str(request.get("namespace") or metadata.get("namespace") or ""),
        name=str(request.get("name") or metadata.get("name") or ""),
        object=obj,
        old_object=old,
        user=UserInfo(
            username=str(user.get("username") or ""),
            uid=str(user.get("uid") or ""),
            groups=tuple(str(g) for g in user.get("groups") or ()),
        ),
        dry_run=bool(request.get("dryRun")),
        kind=str(kind.get("kind") or "") if isinstance(kind, dict) else "",
        version=str(kind.get("version") or "") if isinstance(kind, dict) else "",
    )


def _review(response: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def _error_status(message: str, code: int = 500) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "code": code,
    }


def _at(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = obj
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def protected_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    """The first protected field `after` changes, dotted (None: none)."""
    for path in PROTECTED:
        if _at(before, path) != _at(after, path):
            return ".".join(path)
    return None


def patch_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch that turns `before` into `after` (RFC 6902 operations)."""
    operations: list[dict[str, Any]] = jsonpatch.make_patch(dict(before), dict(after)).patch
    return operations


def patch_digest(operations: list[dict[str, Any]]) -> str:
    text = json.dumps(operations, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


async def admit(
    handler_name: str,
    handler: Callable[..., Any],
    request: AdmissionRequest,
    *,
    deadline: float,
    secret_fields: tuple[str, ...] = (),
) -> AdmissionAnswer:
    """Run `handler` ("validate" or "mutate") on `request` and answer. Never raises for
    anything the handler does."""
    started = time.perf_counter()
    # the secrets of both the new and the stored object (an UPDATE may change one)
    redactor = Redactor.from_object(
        {"new": request.object or {}, "old": request.old_object or {}}, secret_fields
    )
    label = f"{handler_name} handler"

    def answer(
        result: Result,
        *,
        code: int = 200,
        message: str = "",
        patch: list[dict[str, Any]] | None = None,
    ) -> AdmissionAnswer:
        message = redactor.text(message)
        response: dict[str, Any] = {"uid": request.uid, "allowed": result == "allowed"}
        if result == "rejected":
            response["status"] = {
                "code": code,
                "message": message,
                "reason": "Forbidden" if code == 403 else "Invalid",
            }
        if patch:
            encoded = json.dumps(patch, separators=(",", ":")).encode()
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(encoded).decode()
        decision = AdmissionDecision(
            handler=handler_name,
            request_uid=request.uid,
            operation=request.operation,
            namespace=request.namespace,
            name=request.name,
            username=request.user.username,
            result=result,
            code=code,
            message=message,
            patch_digest=patch_digest(patch) if patch else None,
            patch_operations=len(patch or ()),
            dry_run=request.dry_run,
            seconds=time.perf_counter() - started,
        )
        if result == "error":
            return AdmissionAnswer(500, _error_status(message), decision)
        return AdmissionAnswer(200, _review(response), decision)

    if handler_name == "mutate" and request.object is None:
        return answer("allowed")  # a DELETE: nothing is stored, nothing to mutate
    given = copy.deepcopy(request)  # the handler may change what it is given
    try:
        returned = await call_handler(handler, given, deadline=deadline)
    except Rejected as refusal:
        return answer("rejected", code=refusal.code, message=refusal.message)
    except HandlerTimeout as late:
        return answer("error", code=500, message=f"the {label} {late}")
    except Exception as error:
        return answer(
            "error", code=500, message=f"the {label} raised {type(error).__name__}: {error}"
        )
    if handler_name != "mutate" or request.object is None or returned is None:
        return answer("allowed")
    if not isinstance(returned, Mapping):
        return answer(
            "rejected",
            code=500,
            message=f"the {label} returned a {type(returned).__name__}, not the object to store",
        )
    try:
        mutated = json.loads(json.dumps(returned))
    except (TypeError, ValueError) as bad:
        return answer(
            "rejected", code=500, message=f"the {label} returned an object that is not JSON: {bad}"
        )
    changed = protected_change(request.object, mutated)
    if changed is not None:
        return answer(
            "rejected",
            code=500,
            message=f"the {label} changed {changed}, which "
            "a mutating webhook may not change; change only spec and metadata "
            "labels or annotations",
        )
    return answer("allowed", patch=patch_between(request.object, mutated))
