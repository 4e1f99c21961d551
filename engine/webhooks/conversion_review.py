"""One ConversionReview v1 answered by the resource's converters (hub and spoke).

An object of version A goes to the storage version (the hub) with A's `to_hub`, then to
the desired version B with B's `from_hub` (either step is skipped at the hub). Each
converted object is checked the way the API server needs it: the same `metadata` except
labels and annotations, and nothing lost — converted back to A it must equal what came
in, or the conversion fails naming the first field that differs. A failed conversion
answers `result.status: Failure` with the message (the API server refuses the request),
never a partial list.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonpatch

from engine.runtime.reconcile.operator import CustomResource

API_VERSION = "apiextensions.k8s.io/v1"
MUTABLE_METADATA = ("labels", "annotations")


class BadReview(ValueError):
    """A body that is not a ConversionReview v1 request (answered with HTTP 400)."""


class ConversionError(Exception):
    """An object that cannot be converted without loss (`source` → `desired`)."""

    def __init__(self, message: str, *, source: str, desired: str, name: str) -> None:
        super().__init__(message)
        self.message, self.source, self.desired, self.name = message, source, desired, name


@dataclass(frozen=True, slots=True)
class ConversionRequest:
    uid: str
    desired_api_version: str
    objects: tuple[Mapping[str, Any], ...]


def review_request(body: Any) -> ConversionRequest:
    """The `request` of a ConversionReview v1 body. Errors: `BadReview` naming the field."""
    if not isinstance(body, dict) or body.get("kind") != "ConversionReview":
        raise BadReview("the body is not a ConversionReview")
    if body.get("apiVersion") != API_VERSION:
        raise BadReview(f"apiVersion {body.get('apiVersion')!r} is not {API_VERSION}")
    request = body.get("request")
    if not isinstance(request, dict):
        raise BadReview("the ConversionReview has no request")
    uid, desired = request.get("uid"), request.get("desiredAPIVersion")
    if not isinstance(uid, str) or not uid:
        raise BadReview("request.uid is missing")
    if not isinstance(desired, str) or "/" not in desired:
        raise BadReview("request.desiredAPIVersion is not group/version")
    objects = request.get("objects")
    if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
        raise BadReview("request.objects is not a list of objects")
    return ConversionRequest(uid, desired, tuple(objects))


def response(
    request: ConversionRequest, converted: list[dict[str, Any]] | None, failure: str | None
) -> dict[str, Any]:
    """The ConversionReview answer: the converted objects, or the failure's message."""
    answer: dict[str, Any] = {"uid": request.uid}
    if failure is None:
        answer["convertedObjects"] = converted or []
        answer["result"] = {"status": "Success"}
    else:
        answer["convertedObjects"] = []
        answer["result"] = {"status": "Failure", "message": failure}
    return {"apiVersion": API_VERSION, "kind": "ConversionReview", "response": answer}


def _version_of(resource: CustomResource, api_version: Any) -> str:
    group, _, version = str(api_version).rpartition("/")
    if group != resource.group or version not in resource.version_names:
        raise ValueError(
            f"apiVersion {api_version!r} is not a served version of {resource.kind} "
            f"({', '.join(f'{resource.group}/{v}' for v in resource.version_names)})"
        )
    return version


def _step(
    resource: CustomResource, obj: Mapping[str, Any], source: str, desired: str
) -> dict[str, Any]:
    """`obj` (at `source`) in `desired`, through the hub; `apiVersion` set by the engine."""
    current: Mapping[str, Any] = obj
    if source != resource.version:
        spoke = resource.served_version(source)
        assert spoke is not None
        current = spoke.to_hub(copy.deepcopy(dict(current)))
    if desired != resource.version:
        spoke = resource.served_version(desired)
        assert spoke is not None
        current = spoke.from_hub(copy.deepcopy(dict(current)))
    if not isinstance(current, Mapping):
        raise TypeError(f"a converter returned a {type(current).__name__}, not an object")
    result: dict[str, Any] = json.loads(json.dumps(current))
    result["apiVersion"] = f"{resource.group}/{desired}"
    return result


def _first_difference(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    operations = jsonpatch.make_patch(dict(before), dict(after)).patch
    first = operations[0]
    path = str(first["path"]).lstrip("/").replace("/", ".")
    verb = {"remove": "loses", "add": "adds", "replace": "changes"}.get(first["op"], "changes")
    return f"{verb} {path}"


def convert_object(
    resource: CustomResource, obj: Mapping[str, Any], desired: str
) -> dict[str, Any]:
    """`obj` converted to version `desired`, checked for loss.

    Errors: `ConversionError` naming the object, the versions and what is lost.
    """
    metadata = obj.get("metadata") or {}
    name = f"{metadata.get('namespace', '')}/{metadata.get('name', '')}".lstrip("/")
    source_text = str(obj.get("apiVersion"))

    def fail(message: str, source: str = source_text) -> ConversionError:
        return ConversionError(message, source=source, desired=desired, name=name)

    try:
        source = _version_of(resource, obj.get("apiVersion"))
    except ValueError as bad:
        raise fail(str(bad)) from None
    if source == desired:
        return copy.deepcopy(dict(obj))
    where = f"converting {resource.kind} {name} from {source} to {desired}"
    try:
        converted = _step(resource, obj, source, desired)
        back = _step(resource, converted, desired, source)
    except Exception as error:
        raise fail(
            f"{where}: the converter raised {type(error).__name__}: {error}", source
        ) from None
    before_meta, after_meta = dict(metadata), dict(converted.get("metadata") or {})
    for key in MUTABLE_METADATA:
        before_meta.pop(key, None)
        after_meta.pop(key, None)
    if before_meta != after_meta:
        raise fail(
            f"{where}: metadata other than labels and annotations changed "
            f"({_first_difference(before_meta, after_meta)})",
            source,
        )
    original = json.loads(json.dumps(obj))
    if back != original:
        raise fail(
            f"{where} and back {_first_difference(original, back)}: the "
            "converters must keep every field (put one the other version lacks "
            "in an annotation)",
            source,
        )
    return converted


def convert(resource: CustomResource, request: ConversionRequest) -> list[dict[str, Any]]:
    """Every object of `request` in its desired version. Errors: `ConversionError` for
    the first object that cannot be converted (also for a desired version not served)."""
    group, _, desired = request.desired_api_version.rpartition("/")
    if group != resource.group or desired not in resource.version_names:
        raise ConversionError(
            f"desiredAPIVersion {request.desired_api_version} is not a served version of "
            f"{resource.kind}",
            source="",
            desired=request.desired_api_version,
            name="",
        )
    return [convert_object(resource, obj, desired) for obj in request.objects]
