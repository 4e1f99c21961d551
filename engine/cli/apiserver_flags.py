"""kube-apiserver's own flag names for `engine apiserver`: authentication (token file,
token-review webhook, OIDC, anonymous), authorization mode, TLS and ServiceAccount
token signing, turned into the server's SecurityOptions."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from engine.apiserver.authn.oidc import OidcOptions
from engine.apiserver.authn.service_accounts import DEFAULT_ISSUER
from engine.apiserver.http.security import MODES, SecurityOptions

F = TypeVar("F", bound=Callable[..., Any])
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")
_FILE = click.Path(dir_okay=False, path_type=Path)


class BadFlag(click.ClickException):
    """A flag value that cannot work; exit code 2 like every bad input."""

    exit_code = 2


def parse_duration(flag: str, text: str) -> float:
    """Seconds in a Go duration such as `2m`, `30s`, `1h30m` or a plain number of seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise BadFlag(f"{flag} {text!r}: not a duration; write e.g. 30s, 2m or 1h")
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


_OPTIONS: list[Callable[[F], F]] = [
    click.option("--authorization-mode", type=click.Choice(MODES), default="AlwaysAllow",
                 show_default=True, help="RBAC checks every request against the stored roles."),
    click.option("--anonymous-auth/--no-anonymous-auth", default=True, show_default=True,
                 help="With RBAC, requests without a token act as system:anonymous."),
    click.option("--token-auth-file", type=_FILE,
                 help="CSV of bearer tokens: token,user,uid,\"group1,group2\"."),
    click.option("--authentication-token-webhook-config-file", "webhook_config", type=_FILE,
                 help="A kubeconfig naming a TokenReview webhook for unknown tokens."),
    click.option("--authentication-token-webhook-cache-ttl", "webhook_ttl", default="2m",
                 show_default=True, help="How long the webhook's answers are cached."),
    click.option("--authentication-token-webhook-timeout", "webhook_timeout", default="10s",
                 show_default=True, help="How long to wait for the webhook (then 401)."),
    click.option("--oidc-issuer-url", help="OIDC issuer; ID tokens' iss must equal it."),
    click.option("--oidc-client-id", help="The audience ID tokens must be issued for."),
    click.option("--oidc-username-claim", default="sub", show_default=True),
    click.option("--oidc-username-prefix", default=None,
                 help="Default: '<issuer>#' unless the claim is email; '-' for none."),
    click.option("--oidc-groups-claim", default=""),
    click.option("--oidc-groups-prefix", default=""),
    click.option("--oidc-ca-file", type=_FILE, help="CA to trust when fetching the issuer."),
    click.option("--oidc-signing-algs", default="RS256", show_default=True),
    click.option("--oidc-required-claim", "oidc_required", multiple=True,
                 help="key=value a token must carry (repeatable)."),
    click.option("--oidc-jwks-file", type=_FILE,
                 help="The issuer's keys (JWKS) from a file instead of its discovery URL."),
    click.option("--secure-port", type=click.IntRange(0, 65535), default=None,
                 help="Serve HTTPS here (0: a free port); plain HTTP stays on 127.0.0.1:--port."),
    click.option("--tls-cert-file", type=_FILE, help="Serving certificate (else generated)."),
    click.option("--tls-private-key-file", type=_FILE),
    click.option("--tls-ca-file", type=_FILE,
                 help="CA of --tls-cert-file, written into the kubeconfig."),
    click.option("--cert-dir", type=click.Path(file_okay=False, path_type=Path),
                 help="Where the generated CA, certificate and ServiceAccount key are kept."),
    click.option("--service-account-signing-key-file", "sa_key", type=_FILE,
                 help="RSA key (PEM) that signs ServiceAccount tokens (created if absent)."),
    click.option("--service-account-issuer", default=DEFAULT_ISSUER, show_default=True),
]  # fmt: skip


def security_flags(command: F) -> F:
    """Add every security flag to `command`."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def _oidc(flags: dict[str, Any]) -> OidcOptions | None:
    issuer, client = flags.pop("oidc_issuer_url"), flags.pop("oidc_client_id")
    required = []
    for pair in flags.pop("oidc_required"):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadFlag(f"--oidc-required-claim {pair!r}: write key=value")
        required.append((key, value))
    names = ("username_claim", "username_prefix", "groups_claim", "groups_prefix", "ca_file")
    values = {name: flags.pop(f"oidc_{name}") for name in names}
    algs, jwks = flags.pop("oidc_signing_algs"), flags.pop("oidc_jwks_file")
    if not issuer and not client:
        return None
    if not issuer or not client:
        raise BadFlag("--oidc-issuer-url and --oidc-client-id go together; give both")
    return OidcOptions(
        issuer_url=issuer,
        client_id=client,
        signing_algs=tuple(a.strip() for a in algs.split(",") if a.strip()),
        jwks_file=jwks,
        required_claims=tuple(required),
        **values,
    )


def security_from_flags(flags: dict[str, Any]) -> SecurityOptions:
    """SecurityOptions from the parsed flags (consumed from `flags`); BadFlag on nonsense."""
    oidc = _oidc(flags)
    return SecurityOptions(
        authorization_mode=flags.pop("authorization_mode"),
        anonymous_auth=flags.pop("anonymous_auth"),
        token_auth_file=flags.pop("token_auth_file"),
        webhook_config_file=flags.pop("webhook_config"),
        webhook_cache_ttl=parse_duration(
            "--authentication-token-webhook-cache-ttl", flags.pop("webhook_ttl")
        ),
        webhook_timeout=parse_duration(
            "--authentication-token-webhook-timeout", flags.pop("webhook_timeout")
        ),
        oidc=oidc,
        secure_port=flags.pop("secure_port"),
        tls_cert_file=flags.pop("tls_cert_file"),
        tls_private_key_file=flags.pop("tls_private_key_file"),
        tls_ca_file=flags.pop("tls_ca_file"),
        cert_dir=flags.pop("cert_dir"),
        service_account_signing_key_file=flags.pop("sa_key"),
        service_account_issuer=flags.pop("service_account_issuer"),
    )
