"""The review APIs and the TokenRequest subresource: SelfSubjectAccessReview,
SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectRulesReview (authorization.k8s.io/v1),
TokenReview, SelfSubjectReview (authentication.k8s.io/v1), and
POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token. Bodies come as JSON or as the
protobuf kubectl sends; answers are JSON."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from engine.apiserver.authn.service_accounts import (
    DEFAULT_EXPIRATION_SECONDS,
    MIN_EXPIRATION_SECONDS,
    ServiceAccountTokens,
)
from engine.apiserver.authn.user_info import UserInfo, user_from_review
from engine.apiserver.authz.attributes import Attributes
from engine.apiserver.authz.review_protobuf import decode_review
from engine.apiserver.authz.rules import PolicyRule
from engine.apiserver.http.access import AccessControl, request_user
from engine.apiserver.http.body import PROTOBUF, decode_object, media_type
from engine.apiserver.http.handlers import AUDIT_KEY, CONTEXT_KEY, json_response
from engine.apiserver.store.errors import ApiError, not_found

ACCESS_KEY = web.AppKey("access_control", AccessControl)
TOKENS_KEY = web.AppKey("service_account_tokens", ServiceAccountTokens)
AUTHZ = "/apis/authorization.k8s.io/v1"
AUTHN = "/apis/authentication.k8s.io/v1"
_ALL_RULES = (
    PolicyRule(verbs=("*",), api_groups=("*",), resources=("*",)),
    PolicyRule(verbs=("*",), non_resource_urls=("*",)),
)


async def _body(request: web.Request, kind: str) -> dict[str, Any]:
    raw = await request.read()
    content_type = request.headers.get("Content-Type", "application/json")
    if media_type(content_type) == PROTOBUF:
        body = decode_review(raw)
    else:
        body = decode_object(raw, content_type, strict=False)
    if body.get("kind") not in (None, kind):
        raise ApiError(400, f"the request body is a {body.get('kind')}, not a {kind}")
    return body


def _answer(
    body: dict[str, Any], kind: str, group_version: str, status: dict[str, Any]
) -> web.Response:
    answer = {
        "kind": kind,
        "apiVersion": group_version,
        "metadata": body.get("metadata") or {},
        "spec": body.get("spec") or {},
        "status": status,
    }
    return json_response(answer, status=201)


def _asked(user: UserInfo, spec: dict[str, Any], *, namespace: str | None = None) -> Attributes:
    resource = spec.get("resourceAttributes")
    if isinstance(resource, dict):
        return Attributes(
            user=user,
            verb=str(resource.get("verb") or ""),
            resource_request=True,
            api_group=str(resource.get("group") or ""),
            api_version=str(resource.get("version") or ""),
            namespace=namespace if namespace is not None else str(resource.get("namespace") or ""),
            resource=str(resource.get("resource") or ""),
            subresource=str(resource.get("subresource") or ""),
            name=str(resource.get("name") or ""),
        )
    other = spec.get("nonResourceAttributes")
    if isinstance(other, dict):
        return Attributes(
            user=user,
            verb=str(other.get("verb") or ""),
            resource_request=False,
            path=str(other.get("path") or ""),
        )
    raise ApiError(
        422,
        "spec: Invalid value: exactly one of nonResourceAttributes or resourceAttributes "
        "must be specified",
        reason="Invalid",
    )


def _decision(access: AccessControl, attrs: Attributes) -> dict[str, Any]:
    decision = access.authorizer.authorize(attrs)
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return status


async def self_subject_access_review(request: web.Request) -> web.Response:
    """POST selfsubjectaccessreviews: may the requesting user do this?"""
    body = await _body(request, "SelfSubjectAccessReview")
    attrs = _asked(request_user(request), body.get("spec") or {})
    status = _decision(request.app[ACCESS_KEY], attrs)
    return _answer(body, "SelfSubjectAccessReview", "authorization.k8s.io/v1", status)


async def subject_access_review(request: web.Request) -> web.Response:
    """POST subjectaccessreviews (and namespaced localsubjectaccessreviews)."""
    namespace = request.match_info.get("namespace")
    kind = "LocalSubjectAccessReview" if namespace else "SubjectAccessReview"
    body = await _body(request, kind)
    spec = body.get("spec") or {}
    subject = user_from_review(spec)
    if not subject.name and not subject.groups:
        raise ApiError(
            422, "spec.user: Invalid value: at least one of user or group must be specified",
            reason="Invalid",
        )  # fmt: skip
    status = _decision(request.app[ACCESS_KEY], _asked(subject, spec, namespace=namespace))
    return _answer(body, kind, "authorization.k8s.io/v1", status)


async def self_subject_rules_review(request: web.Request) -> web.Response:
    """POST selfsubjectrulesreviews: every rule the requesting user has in a namespace."""
    body = await _body(request, "SelfSubjectRulesReview")
    namespace = str((body.get("spec") or {}).get("namespace") or "")
    authorizer = request.app[ACCESS_KEY].authorizer
    rules_for = getattr(authorizer, "rules_for", None)
    errors: list[str] = []
    if rules_for is None:
        rules = list(_ALL_RULES)
    else:
        rules, errors = rules_for(request_user(request), namespace)
    status: dict[str, Any] = {
        "resourceRules": [r.as_json() for r in rules if not r.non_resource_urls],
        "nonResourceRules": [r.as_json() for r in rules if r.non_resource_urls],
        "incomplete": bool(errors),
    }
    if errors:
        status["evaluationError"] = "; ".join(errors)
    return _answer(body, "SelfSubjectRulesReview", "authorization.k8s.io/v1", status)


async def token_review(request: web.Request) -> web.Response:
    """POST tokenreviews: who does this token authenticate as?"""
    body = await _body(request, "TokenReview")
    token = str((body.get("spec") or {}).get("token") or "")
    user = await request.app[ACCESS_KEY].authenticate_token(token) if token else None
    status: dict[str, Any] = {"authenticated": user is not None, "user": {}}
    if user is not None:
        status["user"] = user.as_review()
    else:
        status["error"] = "the token is not valid"
    return _answer(body, "TokenReview", "authentication.k8s.io/v1", status)


async def self_subject_review(request: web.Request) -> web.Response:
    """POST selfsubjectreviews (`kubectl auth whoami`)."""
    body = await _body(request, "SelfSubjectReview")
    answer = {
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": body.get("metadata") or {},
        "status": {"userInfo": request_user(request).as_review()},
    }
    return json_response(answer, status=201)


async def token_request(request: web.Request) -> web.Response:
    """POST serviceaccounts/<name>/token: a signed token for that ServiceAccount."""
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    request[AUDIT_KEY] = {
        "verb": "create", "group": "", "resource": "serviceaccounts",
        "subresource": "token", "namespace": namespace, "name": name,
    }  # fmt: skip
    body = await _body(request, "TokenRequest")
    account = request.app[CONTEXT_KEY].store.get(f"/serviceaccounts/{namespace}/{name}")
    if account is None:
        raise not_found("serviceaccounts", name, group="")
    spec = body.get("spec") or {}
    seconds = int(spec.get("expirationSeconds") or DEFAULT_EXPIRATION_SECONDS)
    if seconds < MIN_EXPIRATION_SECONDS:
        raise ApiError(
            422,
            f'TokenRequest.authentication.k8s.io "{name}" is invalid: spec.expirationSeconds: '
            f"Invalid value: {seconds}: may not specify a duration less than 10 minutes",
            reason="Invalid",
        )
    audiences = [str(a) for a in spec.get("audiences") or ()]
    issued = request.app[TOKENS_KEY].issue(account, audiences=audiences, expiration_seconds=seconds)
    tokens = request.app[TOKENS_KEY]
    answer = {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"audiences": audiences or list(tokens.audiences), "expirationSeconds": seconds},
        "status": {
            "token": issued.token,
            "expirationTimestamp": issued.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }
    return json_response(answer, status=201)


async def create_only(request: web.Request) -> web.Response:
    """Any other method on a review URL: they are create-only, as upstream."""
    raise ApiError(405, f"{request.method} is not supported here", reason="MethodNotAllowed")


def add_review_routes(app: web.Application) -> None:
    """Route the review APIs and the token subresource (before the generic routes, which
    would otherwise serve them as stored kinds)."""
    routes = {
        f"{AUTHZ}/selfsubjectaccessreviews": self_subject_access_review,
        f"{AUTHZ}/subjectaccessreviews": subject_access_review,
        f"{AUTHZ}/namespaces/{{namespace}}/localsubjectaccessreviews": subject_access_review,
        f"{AUTHZ}/selfsubjectrulesreviews": self_subject_rules_review,
        f"{AUTHN}/tokenreviews": token_review,
        f"{AUTHN}/selfsubjectreviews": self_subject_review,
        "/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token": token_request,
    }
    for path, handler in routes.items():
        app.router.add_post(path, handler)
        for method in ("GET", "PUT", "PATCH", "DELETE"):
            app.router.add_route(method, path, create_only)
