"""Impersonation (Impersonate-User, -Uid, -Group, -Extra-<key> headers; `kubectl --as`,
`--as-group`): each impersonated attribute needs the `impersonate` verb on users,
serviceaccounts, groups, uids or userextras, checked for the requesting user, as
upstream's impersonation filter does."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote

from multidict import CIMultiDictProxy

from engine.apiserver.authn.user_info import (
    ANONYMOUS,
    AUTHENTICATED,
    SERVICE_ACCOUNTS,
    UNAUTHENTICATED,
    UserInfo,
    split_service_account,
)
from engine.apiserver.authz.attributes import Attributes
from engine.apiserver.store.errors import ApiError

USER_HEADER = "Impersonate-User"
UID_HEADER = "Impersonate-Uid"
GROUP_HEADER = "Impersonate-Group"
EXTRA_PREFIX = "Impersonate-Extra-"
AUTH_GROUP = "authentication.k8s.io"
Check = Callable[[Attributes], None]
"""Raises the 403 ApiError when the requester may not do what the attributes say."""


def _wanted(requester: UserInfo, resource: str, name: str, **where: str) -> Attributes:
    return Attributes(
        user=requester,
        verb="impersonate",
        resource_request=True,
        api_group=where.get("group", ""),
        namespace=where.get("namespace", ""),
        resource=resource,
        subresource=where.get("subresource", ""),
        name=name,
    )


def impersonated(requester: UserInfo, headers: CIMultiDictProxy[str], *, check: Check) -> UserInfo:
    """The user to act as: `requester` when no impersonation header is sent, else the
    impersonated user once `check` allowed each attribute (ApiError 403 otherwise; 400
    for groups, uid or extras without a user)."""
    if not any(key[:12].lower() == "impersonate-" for key in headers):
        return requester  # the common case: one pass over the header names
    extras = {
        unquote(key[len(EXTRA_PREFIX) :]).lower(): tuple(headers.getall(key))
        for key in {k for k in headers if k.lower().startswith(EXTRA_PREFIX.lower())}
    }
    user_name = headers.get(USER_HEADER, "")
    groups = tuple(headers.getall(GROUP_HEADER, ()))
    uid = headers.get(UID_HEADER, "")
    if not user_name:
        if groups or uid or extras:
            raise ApiError(
                400, "impersonating groups, a uid or extras requires Impersonate-User too"
            )
        return requester
    account = split_service_account(user_name)
    if account is not None:
        check(_wanted(requester, "serviceaccounts", account[1], namespace=account[0]))
    else:
        check(_wanted(requester, "users", user_name))
    for group in groups:
        check(_wanted(requester, "groups", group))
    if account is not None and not groups:
        # an account's groups follow from its name: added without a groups check, as upstream
        groups = (SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{account[0]}")
    if uid:
        check(_wanted(requester, "uids", uid, group=AUTH_GROUP))
    for key, values in extras.items():
        for value in values:
            check(_wanted(requester, "userextras", value, group=AUTH_GROUP, subresource=key))
    extra_group = UNAUTHENTICATED if user_name == ANONYMOUS else AUTHENTICATED
    if extra_group not in groups:
        groups = (*groups, extra_group)
    return UserInfo(user_name, uid=uid, groups=groups, extra=extras)
