"""Decode the protobuf bodies kubectl sends for the review kinds (SelfSubjectAccessReview,
SubjectAccessReview, SelfSubjectRulesReview, TokenReview, SelfSubjectReview,
TokenRequest) into their JSON form, with the protobuf runtime and message descriptors
declared here after upstream's generated.proto field numbers (only the fields read)."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError

from engine.apiserver.store.errors import ApiError

MAGIC = b"k8s\x00"
_F = descriptor_pb2.FieldDescriptorProto
_STRING, _INT64, _MESSAGE = _F.TYPE_STRING, _F.TYPE_INT64, _F.TYPE_MESSAGE
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_PACKAGE = "engine.k8s"
# message name -> (field name, number, type, message type or "", repeated)
_MESSAGES: dict[str, tuple[tuple[str, int, int, str, bool], ...]] = {
    "TypeMeta": (("apiVersion", 1, _STRING, "", False), ("kind", 2, _STRING, "", False)),
    "Unknown": (("typeMeta", 1, _MESSAGE, "TypeMeta", False), ("raw", 2, _F.TYPE_BYTES, "", False)),
    "ObjectMeta": (("name", 1, _STRING, "", False), ("namespace", 3, _STRING, "", False)),
    "ResourceAttributes": tuple(
        (name, number, _STRING, "", False)
        for number, name in enumerate(
            ("namespace", "verb", "group", "version", "resource", "subresource", "name"), 1
        )
    ),
    "NonResourceAttributes": (("path", 1, _STRING, "", False), ("verb", 2, _STRING, "", False)),
    "ExtraValue": (("items", 1, _STRING, "", True),),
    "ExtraEntry": (("key", 1, _STRING, "", False), ("value", 2, _MESSAGE, "ExtraValue", False)),
    "AccessSpec": (
        ("resourceAttributes", 1, _MESSAGE, "ResourceAttributes", False),
        ("nonResourceAttributes", 2, _MESSAGE, "NonResourceAttributes", False),
        ("user", 3, _STRING, "", False),
        ("groups", 4, _STRING, "", True),
        ("extra", 5, _MESSAGE, "ExtraEntry", True),
        ("uid", 6, _STRING, "", False),
    ),
    "RulesSpec": (("namespace", 1, _STRING, "", False),),
    "TokenReviewSpec": (("token", 1, _STRING, "", False), ("audiences", 2, _STRING, "", True)),
    "TokenRequestSpec": (
        ("audiences", 1, _STRING, "", True),
        ("expirationSeconds", 4, _INT64, "", False),
    ),
}
_SPEC_OF_KIND = {
    "SelfSubjectAccessReview": "AccessSpec",
    "SubjectAccessReview": "AccessSpec",
    "LocalSubjectAccessReview": "AccessSpec",
    "SelfSubjectRulesReview": "RulesSpec",
    "TokenReview": "TokenReviewSpec",
    "TokenRequest": "TokenRequestSpec",
    "SelfSubjectReview": "",
}


def _pool() -> descriptor_pool.DescriptorPool:
    file = descriptor_pb2.FileDescriptorProto(name="engine_k8s_reviews.proto", package=_PACKAGE)
    messages = dict(_MESSAGES)
    for kind_name, spec in _SPEC_OF_KIND.items():
        envelope = [("metadata", 1, _MESSAGE, "ObjectMeta", False)]
        if spec:
            envelope.append(("spec", 2, _MESSAGE, spec, False))
        messages[kind_name] = tuple(envelope)
    for name, fields in messages.items():
        proto = file.message_type.add(name=name)
        for field_name, number, field_type, type_name, repeated in fields:
            added = proto.field.add(
                name=field_name,
                json_name=field_name,
                number=number,
                type=field_type,
                label=_REPEATED if repeated else _OPTIONAL,
            )
            if type_name:
                added.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return pool


_POOL = _pool()


def _message(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))()


def _fix_extra(spec: dict[str, Any]) -> None:
    entries = spec.pop("extra", None)
    if entries:
        spec["extra"] = {e.get("key", ""): (e.get("value") or {}).get("items", []) for e in entries}


def decode_review(raw: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded review or TokenRequest; ApiError 400 for a body
    that is not one, 415 for another kind of protobuf body."""
    if not raw.startswith(MAGIC):
        raise ApiError(400, "the protobuf body does not start with the k8s envelope")
    envelope = _message("Unknown")
    try:
        envelope.ParseFromString(raw[len(MAGIC) :])
        kind, api_version = envelope.typeMeta.kind, envelope.typeMeta.apiVersion
        if kind not in _SPEC_OF_KIND:
            raise ApiError(415, f"this server decodes no protobuf body of kind {kind!r}; send JSON")
        body = _message(kind)
        body.ParseFromString(envelope.raw)
    except DecodeError as error:
        raise ApiError(400, f"the protobuf body cannot be decoded: {error}") from None
    decoded: dict[str, Any] = json_format.MessageToDict(body, preserving_proto_field_name=True)
    decoded.setdefault("spec", {})
    _fix_extra(decoded["spec"])
    if "expirationSeconds" in decoded["spec"]:
        decoded["spec"]["expirationSeconds"] = int(decoded["spec"]["expirationSeconds"])
    return {"apiVersion": api_version, "kind": kind, **decoded}
