"""Assemble the server's security from kube-apiserver-style options: which authenticators
run (administrator token, --token-auth-file, ServiceAccount tokens, OIDC, token-review
webhook, anonymous), which authorizer (AlwaysAllow or RBAC, with the default policy),
and the TLS certificate. With no option given it is today's behaviour: on loopback no
authentication, elsewhere the generated bearer token; any option (HTTPS included) turns
authentication on, with the generated administrator token in the kubeconfig."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.apiserver.authn.oidc import OidcAuthenticator, OidcOptions
from engine.apiserver.authn.service_accounts import (
    DEFAULT_ISSUER,
    ServiceAccountTokens,
    load_or_create_key,
)
from engine.apiserver.authn.static_tokens import StaticTokens, read_token_file
from engine.apiserver.authn.user_info import ADMIN, UserInfo
from engine.apiserver.authn.webhook import WebhookAuthenticator, read_reviewer
from engine.apiserver.authz.bootstrap import default_policy
from engine.apiserver.authz.rbac import GROUP, AlwaysAllow, RbacAuthorizer
from engine.apiserver.http.access import AccessControl, Authenticator, Authorizer
from engine.apiserver.http.auth import is_loopback, new_token
from engine.apiserver.http.certificates import (
    ServingCertificate,
    generated_certificate,
    given_certificate,
)
from engine.apiserver.http.target import Target
from engine.apiserver.store.api_context import ApiContext
from engine.apiserver.verbs.writes import WriteOptions, create

MODES = ("AlwaysAllow", "RBAC")
LEGACY_UNAUTHORIZED = "Unauthorized: send the bearer token from the kubeconfig this server wrote"


class SecurityConfigError(ValueError):
    """Options that cannot work together, or a file they name that is unusable."""


@dataclass(frozen=True)
class SecurityOptions:
    """kube-apiserver's authentication, authorization and TLS flags.

    `secure_port` (or a given certificate) turns HTTPS on: the kubeconfig then points at
    it, and plain HTTP stays on loopback at the server's ordinary port. `cert_dir` keeps
    the generated CA, serving certificate and ServiceAccount key across restarts.
    """

    authorization_mode: str = "AlwaysAllow"
    anonymous_auth: bool = True
    token_auth_file: Path | None = None
    webhook_config_file: Path | None = None
    webhook_timeout: float = 10.0
    webhook_cache_ttl: float = 120.0
    oidc: OidcOptions | None = None
    secure_port: int | None = None
    tls_cert_file: Path | None = None
    tls_private_key_file: Path | None = None
    tls_ca_file: Path | None = None
    cert_dir: Path | None = None
    service_account_signing_key_file: Path | None = None
    service_account_issuer: str = DEFAULT_ISSUER

    @property
    def rbac(self) -> bool:
        """True with --authorization-mode=RBAC."""
        return self.authorization_mode == "RBAC"

    @property
    def tls(self) -> bool:
        """True when the server serves HTTPS."""
        return self.secure_port is not None or self.tls_cert_file is not None

    def custom_authentication(self) -> bool:
        """True when an authenticator beyond the administrator token is configured."""
        return any((self.token_auth_file, self.webhook_config_file, self.oidc))


@dataclass(frozen=True)
class Security:
    """What the server runs with: access control, the ServiceAccount token issuer, the
    administrator token for the kubeconfig (None: no authentication) and TLS."""

    access: AccessControl
    tokens: ServiceAccountTokens
    admin_token: str | None
    certificate: ServingCertificate | None


def _authorizer(ctx: ApiContext, options: SecurityOptions) -> Authorizer:
    if options.authorization_mode not in MODES:
        raise SecurityConfigError(
            f"--authorization-mode {options.authorization_mode}: use one of {', '.join(MODES)}"
        )
    return RbacAuthorizer(ctx.store) if options.rbac else AlwaysAllow()


def _certificate(options: SecurityOptions, host: str, state_dir: Path) -> ServingCertificate | None:
    if not options.tls:
        return None
    if (options.tls_cert_file is None) != (options.tls_private_key_file is None):
        raise SecurityConfigError("--tls-cert-file and --tls-private-key-file go together")
    if options.tls_cert_file is not None and options.tls_private_key_file is not None:
        return given_certificate(
            options.tls_cert_file, options.tls_private_key_file, ca_file=options.tls_ca_file
        )
    return generated_certificate(options.cert_dir or state_dir, host=host)


def build_security(
    ctx: ApiContext,
    options: SecurityOptions,
    *,
    host: str,
    token: str | None,
    state_dir: Path,
) -> Security:
    """The security `options` describe for a server on `host`; `token` is the
    administrator's bearer token (generated when authentication is on and it is None);
    `state_dir` holds generated certificates when no --cert-dir is given.
    SecurityConfigError (or the authenticators' own config errors) on bad options."""
    key_file = options.service_account_signing_key_file or (
        options.cert_dir / "sa.key" if options.cert_dir is not None else None
    )
    tokens = ServiceAccountTokens(
        store=ctx.store,
        key_source=lambda: load_or_create_key(key_file),
        issuer=options.service_account_issuer,
        now=ctx.now,
    )
    certificate = _certificate(options, host, state_dir)
    authorizer = _authorizer(ctx, options)
    legacy = not options.rbac and not options.custom_authentication()
    if legacy and token is None and is_loopback(host) and not options.tls:
        return Security(AccessControl(trust_all=True), tokens, None, certificate)
    admin_token = token or new_token()
    users: dict[str, UserInfo] = {admin_token: ADMIN}
    if options.token_auth_file is not None:
        users.update(read_token_file(options.token_auth_file))
    authenticators: list[Authenticator] = [StaticTokens(users), tokens]
    if options.oidc is not None:
        authenticators.append(OidcAuthenticator(options.oidc))
    if options.webhook_config_file is not None:
        authenticators.append(
            WebhookAuthenticator(
                read_reviewer(options.webhook_config_file),
                timeout=options.webhook_timeout,
                cache_ttl=options.webhook_cache_ttl,
            )
        )
    access = AccessControl(
        authenticators=tuple(authenticators),
        authorizer=authorizer,
        anonymous=options.rbac and options.anonymous_auth,
        unauthorized=LEGACY_UNAUTHORIZED if legacy else "Unauthorized",
    )
    return Security(access, tokens, admin_token, certificate)


async def ensure_default_policy(ctx: ApiContext) -> None:
    """Create the default ClusterRoles and ClusterRoleBindings that are missing."""
    for obj in default_policy():
        plural = "clusterroles" if obj["kind"] == "ClusterRole" else "clusterrolebindings"
        rtype = ctx.registry.lookup(GROUP, "v1", plural)
        assert rtype is not None, "the RBAC kinds are built in"
        if ctx.store.get(rtype.key("", obj["metadata"]["name"])) is None:
            target = Target(rtype=rtype, namespace=None, name=None, subresource=None)
            await create(ctx, target, obj, WriteOptions())
