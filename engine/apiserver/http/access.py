"""Access control for every request: authenticate (bearer token through the configured
authenticators, else anonymous where allowed), apply impersonation, authorize the
request's attributes (and, for writes of RBAC objects, prevent escalation), and answer
401 or 403 as kube-apiserver does."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

from engine.apiserver.authn.errors import TokenRejected
from engine.apiserver.authn.impersonation import impersonated
from engine.apiserver.authn.user_info import ADMIN, ANONYMOUS_USER, UserInfo
from engine.apiserver.authz.attributes import Attributes, request_attributes
from engine.apiserver.authz.escalation import check_escalation, guarded
from engine.apiserver.authz.forbidden import forbidden
from engine.apiserver.authz.rbac import AlwaysAllow, Decision, RbacAuthorizer
from engine.apiserver.authz.rules import PolicyRule
from engine.apiserver.http.body import decode_object
from engine.apiserver.http.handlers import AUDIT_KEY, USER_KEY
from engine.apiserver.store.errors import ApiError

LOG = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LEGACY_OPEN_PATHS = frozenset({"/healthz", "/readyz", "/livez"})


class Authenticator(Protocol):
    """Maps a bearer token to a user: None when the token is not its kind, TokenRejected
    when it is its kind but invalid."""

    async def authenticate(self, token: str) -> UserInfo | None: ...


class Authorizer(Protocol):
    """Answers whether a request's attributes are allowed."""

    def authorize(self, attrs: Attributes) -> Decision: ...


class RuleSource(Protocol):
    """An authorizer that can list a user's rules (for SelfSubjectRulesReview)."""

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[PolicyRule], list[str]]: ...


@dataclass(frozen=True)
class AccessControl:
    """How requests are authenticated and authorized.

    `trust_all`: no authentication, every request acts as the administrator (the
    loopback default). `anonymous`: requests without a token act as system:anonymous
    (upstream's --anonymous-auth, on only with RBAC). `open_paths`: served without a
    token when anonymous is off (the health probes). `unauthorized` is the 401 text.
    """

    authenticators: Sequence[Authenticator] = ()
    authorizer: Authorizer = field(default_factory=AlwaysAllow)
    trust_all: bool = False
    anonymous: bool = False
    open_paths: frozenset[str] = LEGACY_OPEN_PATHS
    unauthorized: str = "Unauthorized"

    async def authenticate_token(self, token: str) -> UserInfo | None:
        """The user `token` authenticates as through the authenticators, or None; a
        rejected token (bad signature, expired, reviewer down) is logged and is None."""
        for authenticator in self.authenticators:
            try:
                user = await authenticator.authenticate(token)
            except TokenRejected as rejected:
                LOG.info("token rejected: %s", rejected)
                return None
            if user is not None:
                return user
        return None

    async def authenticate(self, request: web.Request) -> UserInfo:
        """The requesting user, or ApiError(401)."""
        if self.trust_all:
            return ADMIN
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            user = await self.authenticate_token(token.strip()) if token.strip() else None
            if user is None:
                raise ApiError(401, self.unauthorized, reason="Unauthorized")
            return user
        if self.anonymous or request.path in self.open_paths:
            return ANONYMOUS_USER
        raise ApiError(401, self.unauthorized, reason="Unauthorized")

    def check(self, attrs: Attributes) -> None:
        """ApiError(403) unless the authorizer allows `attrs`."""
        decision = self.authorizer.authorize(attrs)
        if not decision.allowed:
            raise forbidden(attrs, decision.reason)

    def middleware(self) -> Middleware:
        """The aiohttp middleware enforcing this access control on every request."""

        @web.middleware
        async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
            requester = ADMIN if self.trust_all else await self.authenticate(request)
            user = impersonated(requester, request.headers, check=self.check)
            request[USER_KEY] = user
            if isinstance(self.authorizer, AlwaysAllow):
                return await handler(request)  # nothing to ask: skip parsing the URL
            if request.path in self.open_paths and not self.anonymous:
                return await handler(request)  # the legacy probes are served to anyone
            attrs = request_attributes(
                user, method=request.method, path=request.path, query=request.query
            )
            if attrs.resource_request:  # so that a refusal is audited with what it refused
                request[AUDIT_KEY] = {
                    "verb": attrs.verb, "group": attrs.api_group, "resource": attrs.resource,
                    "subresource": attrs.subresource, "namespace": attrs.namespace,
                    "name": attrs.name,
                }  # fmt: skip
            self.check(attrs)
            if guarded(attrs) and isinstance(self.authorizer, RbacAuthorizer):
                body = None
                if attrs.verb in ("create", "update"):
                    content_type = request.headers.get("Content-Type", "application/json")
                    body = decode_object(await request.read(), content_type, strict=False)
                check_escalation(self.authorizer, attrs, body)
            return await handler(request)

        return access


def request_user(request: web.Request) -> UserInfo:
    """The user the access middleware authenticated for `request`."""
    user = request.get(USER_KEY)
    return user if isinstance(user, UserInfo) else ADMIN
