"""The user a request acts as, and the well-known user and group names of Kubernetes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
SERVICE_ACCOUNTS = "system:serviceaccounts"
ADMIN_USER = "kubernetes-admin"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated (or anonymous) user: name, uid, groups and extra attributes."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def with_authenticated(self) -> UserInfo:
        """This user with system:authenticated added (as every authenticator's result)."""
        if AUTHENTICATED in self.groups or self.name == ANONYMOUS:
            return self
        return UserInfo(self.name, self.uid, (*self.groups, AUTHENTICATED), self.extra)

    def as_review(self) -> dict[str, Any]:
        """The UserInfo object of a TokenReview status (authentication.k8s.io/v1)."""
        body: dict[str, Any] = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            body["uid"] = self.uid
        if self.extra:
            body["extra"] = {key: list(values) for key, values in self.extra.items()}
        return body


ADMIN = UserInfo(ADMIN_USER, groups=(MASTERS, AUTHENTICATED))
ANONYMOUS_USER = UserInfo(ANONYMOUS, groups=(UNAUTHENTICATED,))


def service_account_user(namespace: str, name: str, *, uid: str = "") -> UserInfo:
    """The user a ServiceAccount token authenticates as, with upstream's three groups."""
    return UserInfo(
        f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
        uid=uid,
        groups=(SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{namespace}", AUTHENTICATED),
    )


def split_service_account(username: str) -> tuple[str, str] | None:
    """(namespace, name) of a `system:serviceaccount:<ns>:<name>` user name, else None."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = username[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name


def user_from_review(status_user: Mapping[str, Any]) -> UserInfo:
    """A UserInfo from the `status.user` of a TokenReview (or a SubjectAccessReview spec)."""
    extra = status_user.get("extra") or {}
    return UserInfo(
        name=str(status_user.get("username") or status_user.get("user") or ""),
        uid=str(status_user.get("uid") or ""),
        groups=tuple(str(g) for g in status_user.get("groups") or ()),
        extra={str(k): tuple(str(x) for x in v or ()) for k, v in extra.items()},
    )
