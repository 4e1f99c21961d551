"""OpenID Connect ID tokens, as kube-apiserver's --oidc-* flags configure them: the token's
issuer and audience must match, its signature must verify against the issuer's keys (a
JWKS file, or the jwks_uri of the issuer's discovery document), and it must not be
expired; the user name and groups come from the configured claims and prefixes."""

from __future__ import annotations

import json
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from engine.apiserver.authn.errors import TokenRejected
from engine.apiserver.authn.user_info import UserInfo

LOG = logging.getLogger(__name__)
FETCH_TIMEOUT = 10.0


class OidcConfigError(ValueError):
    """OIDC flags that cannot work (no client id, an unreadable JWKS file...)."""


@dataclass(frozen=True)
class OidcOptions:
    """The --oidc-* flags. `username_prefix` None means upstream's default: none for the
    `email` claim, `<issuer>#` otherwise; "-" means no prefix."""

    issuer_url: str
    client_id: str
    username_claim: str = "sub"
    username_prefix: str | None = None
    groups_claim: str = ""
    groups_prefix: str = ""
    jwks_file: Path | None = None
    ca_file: Path | None = None
    signing_algs: tuple[str, ...] = ("RS256",)
    required_claims: tuple[tuple[str, str], ...] = ()

    def prefix(self) -> str:
        """The prefix put before every user name."""
        if self.username_prefix == "-":
            return ""
        if self.username_prefix is not None:
            return self.username_prefix
        return "" if self.username_claim == "email" else f"{self.issuer_url}#"


def _key_set(document: Any, origin: str) -> jwt.PyJWKSet:
    try:
        return jwt.PyJWKSet.from_dict(document)
    except (jwt.PyJWTError, KeyError, TypeError, AttributeError) as error:
        raise OidcConfigError(f"{origin}: not a usable JWKS ({error})") from None


class OidcAuthenticator:
    """Verifies ID tokens of one issuer; keys are fetched on first use and refetched once
    when a token names a key id not yet known."""

    def __init__(self, options: OidcOptions) -> None:
        if not options.issuer_url or not options.client_id:
            raise OidcConfigError("--oidc-issuer-url and --oidc-client-id are both required")
        self._options = options
        self._keys: jwt.PyJWKSet | None = None
        if options.jwks_file is not None:
            try:
                document = json.loads(options.jwks_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise OidcConfigError(f"--oidc-jwks-file {options.jwks_file}: {error}") from None
            self._keys = _key_set(document, f"--oidc-jwks-file {options.jwks_file}")

    async def _fetch_json(self, session: aiohttp.ClientSession, url: str) -> Any:
        async with session.get(url) as response:
            if response.status != 200:
                raise TokenRejected(f"oidc: {url} answered {response.status}")
            return await response.json(content_type=None)

    async def _fetch_keys(self) -> jwt.PyJWKSet:
        ssl_context: ssl.SSLContext | bool = True
        if self._options.ca_file is not None:
            ssl_context = ssl.create_default_context(cafile=str(self._options.ca_file))
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
        base = self._options.issuer_url.rstrip("/")
        try:
            async with aiohttp.ClientSession(
                timeout=timeout, connector=aiohttp.TCPConnector(ssl=ssl_context)
            ) as session:
                discovery = await self._fetch_json(
                    session, f"{base}/.well-known/openid-configuration"
                )
                document = await self._fetch_json(session, str(discovery["jwks_uri"]))
        except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as error:
            raise TokenRejected(f"oidc: cannot fetch the keys of {base}: {error!r}") from None
        try:
            return _key_set(document, f"the JWKS of {base}")
        except OidcConfigError as error:
            raise TokenRejected(str(error)) from None

    async def _keys_for(self, kid: str | None) -> list[Any]:
        """The keys a token naming `kid` may be signed with (every key when it names none)."""
        refetched = False
        if self._keys is None:
            self._keys, refetched = await self._fetch_keys(), True
        while True:
            candidates = [k.key for k in self._keys.keys if kid is None or k.key_id == kid]
            if candidates:
                return candidates
            if refetched or self._options.jwks_file is not None:
                raise TokenRejected(f"oidc: no key with id {kid!r}")
            self._keys, refetched = await self._fetch_keys(), True

    async def authenticate(self, token: str) -> UserInfo | None:
        """The token's user; None for a token of another issuer (or not a JWT);
        TokenRejected for a wrongly signed, expired or wrong-audience token."""
        options = self._options
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        if unverified.get("iss") != options.issuer_url:
            return None
        failure: jwt.PyJWTError | None = None
        for key in await self._keys_for(header.get("kid")):
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=list(options.signing_algs),
                    audience=options.client_id,
                    issuer=options.issuer_url,
                    options={"require": ["exp", "iss", "aud"]},
                )
            except jwt.InvalidSignatureError as error:
                failure = error  # another key of the set may have signed it
                continue
            except jwt.PyJWTError as error:
                raise TokenRejected(f"oidc: {error}") from None
            return self._user(claims)
        raise TokenRejected(f"oidc: {failure}")

    def _user(self, claims: dict[str, Any]) -> UserInfo:
        options = self._options
        for claim, value in options.required_claims:
            if claims.get(claim) != value:
                raise TokenRejected(f"oidc: required claim {claim} is not {value!r}")
        name = claims.get(options.username_claim)
        if not isinstance(name, str) or not name:
            raise TokenRejected(f"oidc: claim {options.username_claim!r} is missing")
        if options.username_claim == "email" and claims.get("email_verified") is False:
            raise TokenRejected("oidc: email not verified")
        groups: tuple[str, ...] = ()
        if options.groups_claim:
            raw = claims.get(options.groups_claim) or ()
            listed = [raw] if isinstance(raw, str) else list(raw)
            groups = tuple(f"{options.groups_prefix}{g}" for g in listed if isinstance(g, str))
        return UserInfo(f"{options.prefix()}{name}", groups=groups).with_authenticated()
