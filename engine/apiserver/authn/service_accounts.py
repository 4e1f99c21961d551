"""ServiceAccount tokens: signed (RS256) by a key the server owns, issued through the
TokenRequest subresource and accepted as `system:serviceaccount:<ns>:<name>` while that
ServiceAccount exists with the same uid."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.apiserver.authn.errors import TokenRejected
from engine.apiserver.authn.user_info import UserInfo, service_account_user
from engine.apiserver.store.storage import Store

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
MIN_EXPIRATION_SECONDS = 600
DEFAULT_EXPIRATION_SECONDS = 3600


class SigningKeyError(ValueError):
    """A --service-account-signing-key-file that is missing or not an RSA private key."""


def load_or_create_key(path: Path | None) -> rsa.RSAPrivateKey:
    """The RSA key in `path` (PEM), created there (mode 0600) when absent; a fresh
    in-memory key when `path` is None (its tokens end with the process)."""
    if path is not None and path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as error:
            raise SigningKeyError(f"--service-account-signing-key-file {path}: {error}") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SigningKeyError(
                f"--service-account-signing-key-file {path}: not an RSA private key"
            )
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.touch(mode=0o600)
        path.write_bytes(pem)
    return key


def key_id(key: rsa.RSAPrivateKey) -> str:
    """Upstream's key id: base64url(SHA-256(DER of the public key)), unpadded."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class IssuedToken:
    """A signed token and when it expires."""

    token: str
    expires: datetime


class ServiceAccountTokens:
    """Issues and checks ServiceAccount tokens for the accounts in `store`, signed with
    the key `key_source` returns (asked once, on first use)."""

    def __init__(
        self,
        *,
        store: Store,
        key_source: Callable[[], rsa.RSAPrivateKey],
        issuer: str = DEFAULT_ISSUER,
        audiences: Sequence[str] = (),
        now: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._key_source = key_source
        self._key: rsa.RSAPrivateKey | None = None
        self.issuer = issuer
        self.audiences = tuple(audiences) or (issuer,)
        self._now = now

    def _signing_key(self) -> rsa.RSAPrivateKey:
        # made on first use: a server that never issues a token never pays for an RSA key
        if self._key is None:
            self._key = self._key_source()
        return self._key

    def issue(
        self,
        account: dict[str, Any],
        *,
        audiences: Sequence[str] = (),
        expiration_seconds: int = DEFAULT_EXPIRATION_SECONDS,
    ) -> IssuedToken:
        """A token for the stored ServiceAccount `account`, valid for the given seconds."""
        meta = account.get("metadata") or {}
        issued = self._now()
        expires = issued + timedelta(seconds=expiration_seconds)
        claims = {
            "iss": self.issuer,
            "sub": f"system:serviceaccount:{meta.get('namespace')}:{meta.get('name')}",
            "aud": list(audiences) or list(self.audiences),
            "iat": int(issued.timestamp()),
            "nbf": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": meta.get("namespace"),
                "serviceaccount": {"name": meta.get("name"), "uid": meta.get("uid")},
            },
        }
        key = self._signing_key()
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": key_id(key)})
        return IssuedToken(token=token, expires=expires.replace(microsecond=0))

    async def authenticate(self, token: str) -> UserInfo | None:
        """The account's user for a token this server issued; None for a token of another
        issuer (or not a JWT); TokenRejected for a bad, expired or orphaned one."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        if unverified.get("iss") != self.issuer:
            return None
        try:
            claims = jwt.decode(
                token,
                self._signing_key().public_key(),
                algorithms=["RS256"],
                audience=list(self.audiences),
                issuer=self.issuer,
                options={"require": ["exp", "sub", "iss"]},
            )
        except jwt.PyJWTError as error:
            raise TokenRejected(f"service account token: {error}") from None
        details = claims.get("kubernetes.io") or {}
        namespace = str(details.get("namespace") or "")
        account = details.get("serviceaccount") or {}
        name, uid = str(account.get("name") or ""), str(account.get("uid") or "")
        stored = self._store.get(f"/serviceaccounts/{namespace}/{name}")
        if stored is None or (stored.get("metadata") or {}).get("uid") != uid:
            raise TokenRejected(
                f"service account token: serviceaccount {namespace}/{name} (uid {uid}) "
                "no longer exists"
            )
        return service_account_user(namespace, name, uid=uid)
