"""The 403 answer in upstream's words: `<resource>[.<group>] "<name>" is forbidden: User
"<user>" cannot <verb> resource "<resource>" in API group "<group>" in the namespace
"<ns>"` (or `at the cluster scope`, or `cannot <verb> path "<path>"`), with details."""

from __future__ import annotations

from engine.apiserver.authz.attributes import Attributes
from engine.apiserver.store.errors import ApiError


def forbidden_message(attrs: Attributes) -> str:
    """Upstream's `forbiddenMessage`: what the user may not do."""
    user = attrs.user.name
    if not attrs.resource_request:
        return f'User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return (
        f'User "{user}" cannot {attrs.verb} resource "{resource}" in API group '
        f'"{attrs.api_group}" {where}'
    )


def forbidden(attrs: Attributes, reason: str = "") -> ApiError:
    """The ApiError(403) upstream's `NewForbidden` builds for `attrs` (and the
    authorizer's reason, appended after a colon)."""
    text = forbidden_message(attrs)
    if reason:
        text = f"{text}: {reason}"
    if not attrs.resource_request:
        return ApiError(403, f"forbidden: {text}", reason="Forbidden", details={})
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    details: dict[str, str] = {"kind": attrs.resource}
    if attrs.api_group:
        details["group"] = attrs.api_group
    if attrs.name:
        details["name"] = attrs.name
    return ApiError(403, f"{subject} is forbidden: {text}", reason="Forbidden", details=details)
