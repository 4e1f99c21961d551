"""What a request asks to do, read from its method and URL alone, as kube-apiserver's
request-info parser does: verb, API group and version, namespace, resource, subresource
and name for resource requests; verb and path for every other URL."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from engine.apiserver.authn.user_info import UserInfo

_METHOD_VERBS = {
    "POST": "create", "GET": "get", "HEAD": "get", "PUT": "update",
    "PATCH": "patch", "DELETE": "delete",
}  # fmt: skip
_SPECIAL_VERBS = frozenset({"proxy", "watch"})
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_NAME_SELECTOR = re.compile(r"^metadata\.name==?([^,=!]+)$")
_TRUE = frozenset({"1", "true", "True", "TRUE"})


@dataclass(frozen=True)
class Attributes:
    """One authorization question: may `user` do `verb` on this resource (or path)?"""

    user: UserInfo
    verb: str
    resource_request: bool
    path: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    def with_user(self, user: UserInfo) -> Attributes:
        """The same question asked for another user."""
        return Attributes(
            user=user,
            verb=self.verb,
            resource_request=self.resource_request,
            path=self.path,
            api_group=self.api_group,
            api_version=self.api_version,
            namespace=self.namespace,
            resource=self.resource,
            subresource=self.subresource,
            name=self.name,
        )


def request_attributes(
    user: UserInfo, *, method: str, path: str, query: Mapping[str, str]
) -> Attributes:
    """The attributes of `method path?query` sent by `user`.

    /api/v1/... and /apis/<group>/<version>/... are resource requests; GET without a
    name is list (watch with ?watch=true), DELETE without a name deletecollection, and a
    `metadata.name` field selector names the object as upstream does. Anything shorter or
    elsewhere (/api, /apis/<group>, /version, /healthz, /openapi/...) is a non-resource
    request whose verb is the lower-cased method.
    """
    parts = [p for p in path.split("/") if p]
    plain = Attributes(user=user, verb=method.lower(), resource_request=False, path=path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return plain
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if len(parts) < 3:
            return plain
        group, parts = parts[0], parts[1:]
    version, parts = parts[0], parts[1:]
    by_method = True
    if parts[0] in _SPECIAL_VERBS and len(parts) >= 2:
        verb, parts, by_method = parts[0], parts[1:], False
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = parts[0]
    name = parts[1] if len(parts) >= 2 else ""
    subresource = parts[2] if len(parts) >= 3 and verb != "proxy" else ""
    if not name and verb == "get" and by_method:
        verb = "watch" if query.get("watch", "") in _TRUE else "list"
        selected = _NAME_SELECTOR.match(query.get("fieldSelector", "").strip())
        if selected:
            name = selected.group(1)
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(
        user=user,
        verb=verb,
        resource_request=True,
        path=path,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
    )
